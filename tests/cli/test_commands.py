"""The commands end to end on the built-in simulated app, and the daemon's signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autoscaler.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOSCALER_", "REDIS_URL", "DATABASE_URL"))
    }
    env.update(extra)
    return env


def _daemon(tmp_path: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autoscaler", "run"],
        cwd=tmp_path,
        env=_env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_run_with_nothing_configured_scales_web_up_and_down_within_a_minute(tmp_path):
    proc = _daemon(tmp_path)
    seen: list[str] = []
    first = None
    deadline = time.monotonic() + 60
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            first = first or line
            if "event=decision process=web action=up" in line:
                seen.append("up")
            if "event=decision process=web action=down" in line and "up" in seen:
                seen.append("down")
                break
            if time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert first is not None
    assert "built-in simulated app" in first and "AUTOSCALER_PLATFORM" in first
    assert seen[:1] == ["up"] and "down" in seen


def test_sigterm_exits_0_within_10_seconds(tmp_path):
    proc = _daemon(tmp_path)
    assert proc.stdout is not None
    assert "event=startup" in proc.stdout.readline()
    time.sleep(1)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert time.monotonic() - start < 10
    assert "event=stopped" in out


def test_sample_json_follows_the_spec_shape(tmp_path, monkeypatch, capsys):
    from autoscaler.clock import accelerated

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOSCALER_SIM_SPEED", "600")
    accelerated(600.0)  # the simulated app's clock starts: let it serve a few minutes
    time.sleep(0.5)
    assert main(["sample", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    web = data["processes"]["web"]
    assert web["metric"] == "request_queue_time"
    assert {"value_ms", "ok", "samples", "queues", "error"} <= set(web)
    assert data["processes"]["worker"]["metric"] == "job_latency"


def test_explain_prints_one_sentence_per_process(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["explain"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("web: ") and "(" in lines[0]


def test_once_json_lists_decisions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOSCALER_DRY_RUN", "true")
    assert main(["once", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is True
    assert [d["process"] for d in data["decisions"]] == ["web", "worker"]
    assert data["writes"] == {} and data["read_errors"] == {}
    assert {d["outcome"] for d in data["decisions"]} <= {"unchanged", "dry_run"}


def test_check_says_when_writes_are_not_sent(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOSCALER_DRY_RUN", "true")
    assert main(["check"]) == 0
    assert "(dry run: writes are not sent)" in capsys.readouterr().out


def test_check_on_sim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    verdicts = [line for line in lines if line.startswith(("check:", "config: ok"))]
    assert verdicts == ["check: ok"] and lines[-1] == "check: ok"


def test_usage_error_exits_2(capsys):
    try:
        main(["frobnicate"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("no SystemExit")


def test_metrics_and_healthz_are_served(tmp_path):
    import httpx

    port = 18000 + os.getpid() % 1000
    proc = _daemon(tmp_path, AUTOSCALER_METRICS_PORT=str(port))
    try:
        body = ""
        for _ in range(50):
            time.sleep(0.2)
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.HTTPError:
                continue
            if "autoscaler_decisions_total" in body:
                break
        assert "autoscaler_decisions_total" in body
        assert "autoscaler_last_successful_tick_timestamp_seconds" in body
        assert health.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
