"""The generated job shapes: seeded, and each with the property it is named for; and
``simulate`` on a job trace from the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from autoscaler.cli import main
from autoscaler.sim.jobs import read_job_trace
from autoscaler.sim.jobshapes import SHAPES, generate
from autoscaler.sim.jobshapes import main as shapes_main

DATA = Path(__file__).parent.parent / "data" / "traces"


def test_a_shape_is_the_same_for_a_seed_and_differs_across_seeds() -> None:
    a, b, c = generate("heavy", seed=1), generate("heavy", seed=1), generate("heavy", seed=2)
    assert a.arrivals == b.arrivals and a.durations == b.durations
    assert a.arrivals != c.arrivals


def test_cron_enqueues_thousands_at_the_top_of_every_hour() -> None:
    t = generate("cron", days=0.5)
    for hour in range(12):
        at = hour * 3600.0
        assert sum(1 for x in t.arrivals if at <= x < at + 1.0) >= 3000


def test_heavy_durations_have_a_p99_about_100x_the_median() -> None:
    d = sorted(generate("heavy", days=2).durations)
    median, p99 = d[len(d) // 2], d[math.ceil(0.99 * len(d)) - 1]
    assert 70 < p99 / median < 140


def test_retry_storms_multiply_the_arrivals_during_an_outage() -> None:
    t = generate("retry", days=1)
    per_minute: dict[int, int] = {}
    for x in t.arrivals:
        per_minute[int(x // 60)] = per_minute.get(int(x // 60), 0) + 1
    usual = sorted(per_minute.values())[len(per_minute) // 2]
    assert max(per_minute.values()) > 1.8 * usual


def test_the_nightly_batch_is_its_own_queue_at_two() -> None:
    t = generate("nightly", days=1)
    assert t.queues == ["default", "batch"]
    batch = [a for a, q in zip(t.arrivals, t.queue_ids, strict=True) if q == 1]
    assert len(batch) == 20_000 and min(batch) >= 7200 and max(batch) < 7201


def test_idle_has_hours_without_a_job() -> None:
    t = generate("idle", days=1)
    gaps = [b - a for a, b in zip(t.arrivals, t.arrivals[1:], strict=False)]
    assert max(gaps) > 3600


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_writes_a_job_trace_simulate_reads(
    shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = 1.0 if shape == "idle" else 0.05  # idle's busy spells come at random hours
    assert shapes_main([shape, "--days", str(days)]) == 0
    path = tmp_path / "jobs.csv"
    path.write_text(capsys.readouterr().out)
    t = read_job_trace(path)
    g = generate(shape, days=days)
    assert len(t) == len(g)
    assert t.durations == pytest.approx(g.durations, abs=1e-3)


@pytest.mark.usefixtures("clean_env")
def test_simulate_on_the_job_slice_prints_every_policy_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "simulate",
            "--trace",
            str(DATA / "nasa-ipsc-jobs-3d.csv.gz"),
            "--concurrency",
            "5",
            "--boot",
            "45",
            "--duration-scale",
            "0.1",
            "--min",
            "0",
            "--policy",
            "all",
            "--json",
            "--jobs",
            "1",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in rows] == ["default", "static", "step", "hirefire", "oracle"]
    for r in rows:
        assert r["model"] == "jobs" and r["jobs"] == 593
        assert "interrupted_job_s" in r and r["instance_hours"] > 0
    oracle = rows[-1]
    assert oracle["interrupted_job_s"] == 0 and oracle["slo_attainment"] == 1.0


@pytest.mark.usefixtures("clean_env")
def test_a_router_limit_is_refused_for_a_job_trace(capsys: pytest.CaptureFixture[str]) -> None:
    trace = str(DATA / "nasa-ipsc-jobs-3d.csv.gz")
    assert main(["simulate", "--trace", trace, "--router-queue", "10"]) == 2
    assert "--router-queue: a router queues web requests, not jobs" in capsys.readouterr().err


def test_simulate_on_a_job_trace_writes_the_workers_report(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    code = main(
        [
            "simulate",
            "--trace",
            str(DATA / "nasa-ipsc-jobs-3d.csv.gz"),
            "--min",
            "0",
            "--policy",
            "step",
            "--report",
            str(report),
            "--jobs",
            "1",
        ]
    )
    assert code == 0
    text = report.read_text()
    assert "oldest due job" in text and "jobs waiting" in text and "interrupted" in text
    assert "<script" not in text


@pytest.mark.usefixtures("clean_env")
def test_tune_on_a_job_trace_prints_worker_settings_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "tune",
            "--trace",
            str(DATA / "nasa-ipsc-jobs-3d.csv.gz"),
            "--duration-scale",
            "0.1",
            "--min",
            "0",
            "--candidates",
            "4",
            "--target",
            "0.99",
            "--json",
            "--jobs",
            "1",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["evaluated"] == 4
    assert "UP_THRESHOLD" in out["settings"] and "HEADROOM" not in out["settings"]
    assert out["configured"]["model"] == "jobs" and "interrupted_job_s" in out["tuned"]
    assert out["band_ms"] == [30_000.0, 6_000.0] and out["band_from"] == "from --slo-ms 60000"
    if out["met"]:
        assert out["tuned"]["slo_attainment"] >= 0.99
        assert out["tuned"]["instance_hours"] <= out["configured"]["instance_hours"] or (
            out["configured"]["slo_attainment"] < 0.99
            or out["configured"]["interrupted_share"] > 0.01
        )


@pytest.mark.usefixtures("clean_env")
def test_a_job_trace_runs_default_and_step_against_the_slo_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        "simulate",
        "--trace",
        str(DATA / "nasa-ipsc-jobs-3d.csv.gz"),
        "--duration-scale",
        "0.1",
        "--min",
        "0",
        "--slo-ms",
        "600000",
        "--policy",
        "step,oracle",
        "--jobs",
        "1",
    ]
    assert main([*args, "--json"]) == 0
    derived = {r["policy"]: r for r in json.loads(capsys.readouterr().out)}
    assert derived["default"]["band_ms"] == derived["step"]["band_ms"] == [300_000.0, 60_000.0]
    assert derived["default"]["band_from"] == "from --slo-ms 600000"
    assert derived["oracle"]["band_ms"] is None
    assert main(args) == 0
    assert "band: up 300 s, down 60 s (from --slo-ms 600000)" in capsys.readouterr().out
    # thresholds set for the worker process win over the SLO
    monkeypatch.setenv("AUTOSCALER_PROCESSES", "worker")
    monkeypatch.setenv("AUTOSCALER_WORKER_SOURCE", "rq")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("AUTOSCALER_WORKER_UP_THRESHOLD", "10s")
    monkeypatch.setenv("AUTOSCALER_WORKER_DOWN_THRESHOLD", "2s")
    assert main([*args, "--json"]) == 0
    configured = {r["policy"]: r for r in json.loads(capsys.readouterr().out)}
    assert configured["default"]["band_ms"] == [10_000.0, 2_000.0]
    assert configured["default"]["band_from"] == "as configured"
    assert main(args) == 0
    assert "band: up 10 s, down 2 s (as configured)" in capsys.readouterr().out
    # a band far below what the SLO allows keeps more instances
    assert configured["default"]["instance_hours"] > derived["default"]["instance_hours"]
