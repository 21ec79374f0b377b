"""The daemon records its history where the app's data is, and the dashboard reads it back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from autoscaler.history import Minute, Recorder, TickFacts
from autoscaler.sim.live import AppShape
from autoscaler.stores.redis import RedisStore
from tests.helpers import empty_redis

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/12"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, object] = json.loads(resp.read())
        return data


def _daemon(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The daemon on the sim platform; its output goes to a file (a pipe nobody reads would
    fill and block its logging)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOSCALER_", "REDIS_"))}
    full.update({"AUTOSCALER_LOG_LEVEL": "warning", "AUTOSCALER_SIM_SPEED": "120", **env})
    out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _stop)
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscaler", "run"],
        env=full,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    proc.output = out  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    out = proc.output  # type: ignore[attr-defined]
    out.seek(0)
    return str(out.read().decode(errors="replace"))


def _redis_server(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """A Redis server of the test's own on ``port``, keeping nothing on disk."""
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL)


@pytest.fixture
def db12() -> Iterator[redis.Redis]:
    yield from empty_redis(REDIS_URL)


def test_the_sim_daemon_serves_hours_of_simulated_history_within_seconds() -> None:
    port = _free_port()
    proc = _daemon({"AUTOSCALER_DASHBOARD_PORT": str(port)})
    try:
        deadline = time.monotonic() + 30
        columns: dict[str, list[object]] = {}
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                h = _get(f"http://127.0.0.1:{port}/api/history?process=web&range=1h")
            except OSError:
                continue
            columns = h["columns"]  # type: ignore[assignment]
            if len(columns["t"]) >= 15:
                break
        assert len(columns["t"]) >= 15, "fifteen simulated minutes within 30 s at speed 120"
        assert any(q is not None and q > 1 for q in columns["quantity"])  # type: ignore[operator]
        events = h["events"]
        assert any(e["kind"] == "decision" and e["reason"] for e in events)  # type: ignore[index]
        assert any(e["kind"] == "config" for e in events)  # type: ignore[index]
        # what the policy learned is shown beside the charts: the sim platform reports the
        # serving instances, so an upscale's boot is timed (read at the daemon's ticks)
        learned = h["learned"]
        boot = AppShape().boot_s
        assert isinstance(learned, dict) and boot <= learned["boot_s"] <= boot + 10, learned
        # and the part of HEADROOM kept for the app's record above the band (the daemon passes
        # the process's settings: a web process, HEADROOM 1.8 by default)
        assert 0.0 <= learned["headroom"] <= 1.8 and 0.0 <= learned["above_band_pct"] <= 100.0
    finally:
        _stop(proc)


def test_history_written_to_redis_is_served_by_the_dashboard_command(db12: redis.Redis) -> None:
    proc = _daemon({"REDIS_URL": REDIS_URL, "AUTOSCALER_LOCK": "none"})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not db12.keys("*history:m:web:*"):
            time.sleep(0.5)
    finally:
        _stop(proc)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOSCALER_")}
    dash = subprocess.Popen(
        [sys.executable, "-m", "autoscaler", "dashboard", "--port", str(port)],
        env={**env, "REDIS_URL": REDIS_URL},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert dash.stdout is not None
        assert f"127.0.0.1:{port}" in dash.stdout.readline().decode()
        meta = _get(f"http://127.0.0.1:{port}/api/processes")
        assert meta["processes"] == ["web", "worker"]
        h = _get(f"http://127.0.0.1:{port}/api/history?process=web&range=6h")
        assert len(h["columns"]["t"]) >= 1  # type: ignore[index]
        assert "web:" in str(h["status"])
    finally:
        dash.send_signal(signal.SIGTERM)
        dash.communicate(timeout=10)


def test_a_killed_store_loses_only_the_minutes_it_was_down_and_scaling_goes_on(
    tmp_path: Path,
) -> None:
    port = _free_port()
    server = _redis_server(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    dash_port = _free_port()
    proc = _daemon(
        {
            "REDIS_URL": url,
            "AUTOSCALER_LOCK": "none",
            "AUTOSCALER_DASHBOARD_PORT": str(dash_port),
            "AUTOSCALER_LOG_LEVEL": "info",
            "AUTOSCALER_LOG_FORMAT": "json",
        }
    )
    try:
        time.sleep(8)
        server.kill()
        server.wait()
        time.sleep(6)  # twelve simulated minutes with the store gone
        server = _redis_server(port, tmp_path)
        time.sleep(8)
    finally:
        out = _stop(proc)
        store = RedisStore.from_url(url, "autoscaler:sim")
        rows, _ = store.read("web", 0, 4e9)
        server.kill()
        server.wait()
    changes = [line for line in out.splitlines() if '"outcome": "written"' in line]
    assert len(changes) >= 2, "the daemon went on scaling"
    warnings = [line for line in out.splitlines() if "history_unavailable" in line]
    assert len(warnings) == 1, "one warning per outage"
    assert "history_recovered" in out
    assert rows, "minutes after the restart are kept"
    times = [m.t for m in rows]
    assert times == sorted(times) and times[-1] - times[0] < 20 * 60


def test_fourteen_days_of_one_process_stay_under_the_documented_bytes(db12: redis.Redis) -> None:
    store = RedisStore(db12, "autoscaler:size")
    rec = Recorder(store)
    t0 = (int(time.time()) // 86400 - 14) * 86400
    for i in range(14 * 86400 // 5):
        wall = t0 + 5 * i
        q = 2 + (i // 720) % 5
        rec.tick(
            wall,
            [
                TickFacts(
                    "web",
                    20.0 + (i % 97),
                    True,
                    q,
                    q,
                    31.7 + i % 13,
                    4.2,
                    i % 720 == 0,
                    "up",
                    "above_band",
                    q + 1,
                )
            ],
        )
    rec.flush()
    used = sum(int(db12.memory_usage(k) or 0) for k in db12.keys("autoscaler:size:*"))
    per_day = used / 14
    assert per_day < 120_000, f"{per_day:.0f} bytes a day"  # docs/dashboard.md: under 120 kB
    print(f"{per_day:.0f} bytes a day")
    assert len(store.read("web", t0, t0 + 15 * 86400)[0]) == 14 * 1440
    assert isinstance(store.read("web", t0, t0 + 60)[0][0], Minute)
