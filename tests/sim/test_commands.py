"""``autoscaler simulate`` and ``autoscaler tune`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.cli import main

DATA = Path(__file__).parent.parent / "data" / "traces"
WC98 = str(DATA / "wc98-slice-6h.csv")
NASA = str(DATA / "nasa-slice-2h.csv.gz")
SPEC_KEYS = {
    "policy",
    "instance_hours",
    "slo_attainment",
    "p95_queue_ms",
    "p99_queue_ms",
    "max_queue_ms",
    "scale_events",
    "minutes",
}


# every test runs with no AUTOSCALER_* variable and no .env file
pytestmark = pytest.mark.usefixtures("clean_env")


def test_simulate_json_has_the_spec_figures_per_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--trace", NASA, "--peak-instances", "8", "--policy", "all", "--json"])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    policies = ["default", "static", "hpa", "step", "oracle", "bound"]
    assert [r["policy"] for r in results] == policies
    for r in results:
        assert set(r) >= SPEC_KEYS
        assert r["minutes"] == 120
        assert r["scale"] > 1  # every result states the scale used
        assert 0 <= r["slo_attainment"] <= 1
    by = {r["policy"]: r for r in results}
    assert by["static"]["scale_events"] == 0
    assert by["static"]["instance_hours"] == pytest.approx(2 * by["static"]["max_instances"])
    assert by["oracle"]["instance_hours"] < by["static"]["instance_hours"]
    assert by["oracle"]["slo_attainment"] >= 0.99
    # the oracle pays for boot, the bound does not
    assert by["bound"]["instance_hours"] < by["oracle"]["instance_hours"]
    # the band each policy ran with: the default's derived from --slo-ms (200 ms)
    assert by["default"]["band_ms"] == [200.0, 50.0] and by["hpa"]["band_ms"] is None


def test_simulate_prints_a_table_and_the_scale(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--trace", WC98, "--peak-instances", "10", "--policy", "hpa"]) == 0
    out = capsys.readouterr().out
    assert "scaled x" in out and "the peak needs 10 instances" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("policy"))
    assert lines[header + 1].startswith("default") and lines[header + 2].startswith("hpa")
    assert len(lines[header]) == len(lines[header + 1])  # aligned columns


def test_a_router_limit_refuses_what_would_pass_it_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--router-queue``: the first lines say the limit, the table and the JSON count the
    requests refused per policy (none for the oracle, which never lets a queue build); without
    it, neither."""
    args = ["simulate", "--scenario", "flash50", "--days", "0.25", "--peak-instances", "5"]
    assert main([*args, "--router-queue", "20", "--policy", "oracle"]) == 0
    out = capsys.readouterr().out
    assert "router: at most 20 requests wait per instance" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("policy"))
    assert "refused" in header
    assert main([*args, "--router-queue", "20", "--policy", "oracle", "--json"]) == 0
    rows = {r["policy"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["default"]["refused_requests"] > 0 and rows["oracle"]["refused_requests"] == 0
    assert main([*args, "--json"]) == 0
    rows = {r["policy"]: r for r in json.loads(capsys.readouterr().out)}
    assert "refused_requests" not in rows["default"]


def test_simulate_uses_the_configured_policy(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["simulate", "--trace", NASA, "--peak-instances", "8", "--json"]
    assert main(args) == 0
    auto = json.loads(capsys.readouterr().out)[0]
    monkeypatch.setenv("AUTOSCALER_WEB_DOWN_DELAY", "10m")
    monkeypatch.setenv("AUTOSCALER_WEB_MAX", "12")
    assert main(args) == 0
    patient = json.loads(capsys.readouterr().out)[0]
    assert patient["scale_events"] < auto["scale_events"]
    assert patient["max_instances"] <= 12


def test_report_is_one_self_contained_html_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "out.html"
    args = ["simulate", "--trace", WC98, "--peak-instances", "10", "--policy", "oracle"]
    assert main([*args, "--report", str(report)]) == 0
    page = report.read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 4  # load, instances, p95 against the SLO per policy (2)
    assert "SLO 200 ms" in page
    assert "<td>oracle</td>" in page and "<td>default</td>" in page
    for external in ("http://", "https://", "<script", "src="):
        assert external not in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "magic"], "unknown 'magic'"),
        (["--report", "out.pdf"], "ending in .html"),
        (["--max", "0"], "are not valid"),
        (["--process", "urgent"], "'urgent' is not configured"),
        (["--process", "worker"], "scales on job latency; give it a job trace"),
        (["--router-queue", "-1"], "--router-queue must be 0 or more"),
    ],
)
def test_bad_usage_exits_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["simulate", "--trace", WC98, *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_flag_values_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--trace", WC98, "--concurrency", "-3"])
    assert info.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_a_malformed_trace_exits_2_with_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,requests\n0,1\n60,2\n120,lots\n")
    assert main(["simulate", "--trace", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4" in err and "'lots' is not a number" in err
    assert "Traceback" not in err


def test_a_bad_config_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSCALER_WEB_UP_COOLDOWN", "soon")
    assert main(["simulate", "--trace", WC98]) == 2
    assert "AUTOSCALER_WEB_UP_COOLDOWN" in capsys.readouterr().err


def test_tune_prints_config_vars_that_meet_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tune", "--trace", NASA, "--peak-instances", "8", "--candidates", "12"]
    assert main([*args, "--target", "0.9", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "AUTOSCALER_WEB_UP_THRESHOLD=" in out and "AUTOSCALER_WEB_DOWN_DELAY=" in out
    assert "AUTOSCALER_WEB_HEADROOM=" in out
    assert "configured" in out and "tuned" in out
    assert "band: up 200 ms, down 50 ms (from --slo-ms 200)" in out
    assert main([*args, "--target", "0.9", "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["band_ms"] == [200.0, 50.0]
    assert outcome["met"] is True
    assert outcome["tuned"]["slo_attainment"] >= 0.9
    assert outcome["evaluated"] == 12
    tuned, configured = outcome["tuned"], outcome["configured"]
    # the winner is the cheapest that meets the target; the configured settings were a candidate
    assert configured["slo_attainment"] < 0.9 or (
        tuned["instance_hours"] <= configured["instance_hours"]
    )


def test_a_trace_without_requests_cannot_be_scaled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("time,requests\n0,0\n60,0\n120,0\n")
    assert main(["simulate", "--trace", str(empty), "--peak-instances", "5"]) == 2
    assert "no requests" in capsys.readouterr().err
    assert main(["simulate", "--trace", str(empty), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["instance_hours"] > 0


def test_the_configured_policy_runs_against_the_slo_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["simulate", "--trace", WC98, "--peak-instances", "10", "--service-ms", "800"]
    assert main([*args, "--slo-ms", "1600", "--json"]) == 0
    derived = json.loads(capsys.readouterr().out)[0]
    assert derived["band_ms"] == [1600.0, 400.0]
    assert main([*args, "--slo-ms", "1600"]) == 0
    assert "band: up 1600 ms, down 400 ms (from --slo-ms 1600)" in capsys.readouterr().out
    monkeypatch.setenv("AUTOSCALER_WEB_UP_THRESHOLD", "200ms")
    monkeypatch.setenv("AUTOSCALER_WEB_DOWN_THRESHOLD", "50ms")
    assert main([*args, "--slo-ms", "1600", "--json"]) == 0
    configured = json.loads(capsys.readouterr().out)[0]
    assert configured["band_ms"] == [200.0, 50.0]
    # a band far below what the app can do keeps more instances
    assert configured["instance_hours"] > derived["instance_hours"]
