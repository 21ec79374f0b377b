"""The scenario generator: seeded, each shape has the property it is named for, and the
simulator replays a scenario as it replays a file."""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

import pytest

from autoscaler.cli import main
from autoscaler.sim.scenarios import SCENARIOS, WIDTH, generate, write_trace
from autoscaler.sim.traces import read_trace

PER_HOUR = round(3600 / WIDTH)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_scenario_is_seeded(name: str) -> None:
    a = generate(name, days=1, seed=3)
    assert list(a.counts) == list(generate(name, days=1, seed=3).counts)
    assert list(a.counts) != list(generate(name, days=1, seed=4).counts)
    assert len(a.counts) == 24 * PER_HOUR and a.width == WIDTH
    assert min(a.counts) >= 0 and a.total > 0


def rise_within_a_minute(counts: list[float]) -> float:
    """The largest factor by which the load grows within a minute (over the level before)."""
    k = round(60 / WIDTH) + 1
    return max(counts[i + k] / counts[i] for i in range(len(counts) - k) if counts[i] > 0)


@pytest.mark.parametrize(("name", "factor"), [("flash10", 10), ("flash50", 50)])
def test_flash_crowds_multiply_the_load_within_a_minute(name: str, factor: int) -> None:
    counts = list(generate(name, days=2, seed=1).counts)
    diurnal = list(generate("diurnal", days=2, seed=1).counts)
    usual = statistics.mean(diurnal)
    assert max(counts) >= 0.9 * factor * usual
    assert rise_within_a_minute(counts) >= 0.5 * factor
    assert rise_within_a_minute(diurnal) < 1.5  # the base itself has no such jumps


def test_bursty_switches_between_two_levels() -> None:
    counts = list(generate("bursty", days=1, seed=1).counts)
    assert set(counts) == {WIDTH, 4 * WIDTH}
    on = sum(c > WIDTH for c in counts) / len(counts)
    assert 0.1 < on < 0.4  # on ~3 minutes for every ~10 off
    switches = sum(a != b for a, b in itertools.pairwise(counts))
    assert switches > 100  # a day of ~13-minute cycles


def longest_zero_run(counts: list[float]) -> int:
    best = run = 0
    for c in counts:
        run = run + 1 if c == 0 else 0
        best = max(best, run)
    return best


def test_gaps_have_hours_without_traffic() -> None:
    counts = list(generate("gaps", days=2, seed=1).counts)
    assert longest_zero_run(counts) >= 2 * PER_HOUR
    assert longest_zero_run(list(generate("diurnal", days=2, seed=1).counts)) == 0
    # the first gap comes within the first half day
    assert longest_zero_run(list(generate("gaps", days=0.5, seed=1).counts)) >= PER_HOUR


def test_inference_has_short_tall_bursts_on_a_small_base() -> None:
    counts = list(generate("inference", days=2, seed=1).counts)
    base = statistics.median(counts)
    burst = [c > 4 * base for c in counts]
    assert max(counts) >= 5 * base
    assert 0 < sum(burst) / len(counts) < 0.2
    runs = []
    run = 0
    for b in [*burst, False]:
        if b:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert len(runs) >= 10
    assert max(runs) <= 16 * 60 / WIDTH  # bursts last minutes, not hours


def test_ramps_climb_slowly_and_steps_jump() -> None:
    ramp = list(generate("ramp", days=2, seed=1).counts)
    step = list(generate("step", days=2, seed=1).counts)
    assert max(ramp) / min(ramp) > 4 and rise_within_a_minute(ramp) < 1.3
    assert rise_within_a_minute(step) > 1.3
    changes = sum(a != b for a, b in itertools.pairwise(step))
    assert 10 <= changes <= 100  # every 0.5 to 4 hours over two days


def test_diurnal_has_a_weekly_cycle() -> None:
    counts = list(generate("diurnal", days=7, seed=1).counts)
    day = 24 * PER_HOUR
    daily = [statistics.mean(counts[i : i + day]) for i in range(0, 7 * day, day)]
    assert max(daily[5:]) < 0.75 * min(daily[:5])  # Saturday and Sunday are quieter
    hourly = [statistics.mean(counts[i : i + PER_HOUR]) for i in range(0, day, PER_HOUR)]
    assert max(hourly) > 3 * min(hourly)


def test_unknown_scenario_and_days() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        generate("tsunami")
    with pytest.raises(ValueError, match="days"):
        generate("step", days=0)


def test_a_written_scenario_reads_back(tmp_path: Path) -> None:
    trace = generate("inference", days=0.25, seed=2)
    path = tmp_path / "inference.csv"
    write_trace(trace, path)
    back = read_trace(path)
    assert back.start == trace.start and back.width == trace.width
    assert list(back.counts) == pytest.approx(list(trace.counts), rel=1e-5)


@pytest.mark.usefixtures("clean_env")
def test_simulate_replays_a_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--scenario", "flash50", "--days", "0.5", "--seed", "2"]
    assert main([*args, "--peak-instances", "10", "--policy", "oracle", "--json"]) == 0
    rows = {r["policy"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["oracle"]["minutes"] == 720
    assert rows["default"]["max_instances"] > 5  # the crowd came and was scaled for
    with pytest.raises(SystemExit) as exc:  # one or the other
        main([*args, "--trace", "x.csv"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
