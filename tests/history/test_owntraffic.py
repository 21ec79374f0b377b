"""Replaying the app's own traffic: the fit of the app model and the trace, from minutes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from autoscaler.cli import main
from autoscaler.history import Minute, Recorder
from autoscaler.sim.owntraffic import (
    MIN_STEADY,
    Fit,
    export_from_env,
    fit,
    fit_slots,
    record_simulated,
    stationary_p95_ms,
    trace_csv,
)
from autoscaler.sim.parallel import fork_pool

DAYS = 1.0


def _queued(slots: int, seed: int = 3, n: int = 200) -> list[Minute]:
    """Minutes of two instances of ``slots`` slots (100 ms requests) at loads from calm to
    busy, each with the queue time the stationary model gives, off by up to 30% either way."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rate = rng.uniform(5.0, 0.9 * 2 * slots / 0.1)
        p95 = stationary_p95_ms(slots, rate, 2, 0.1) * rng.uniform(0.7, 1.3)
        out.append(Minute(60 * i, p95, p95, p95, rate, rate * 0.1, 2, 2, 12, 0, None))
    return out


@pytest.mark.parametrize("slots", [2, 4, 8])
def test_the_slots_are_those_whose_queueing_reproduces_the_recorded_queue_times(
    slots: int,
) -> None:
    assert fit_slots(_queued(slots), 100.0) == (slots, None)


def test_the_slots_are_never_fewer_than_the_requests_in_service_per_instance_seen() -> None:
    rows = _queued(2)
    rows[-1] = Minute(rows[-1].t, 0, 0, 0, 10.0, 1.0, 2, 2, 12, 0, 4.5)
    assert fit_slots(rows, 100.0)[0] == 5


def test_without_the_queue_time_rising_the_slots_are_a_lower_bound_said_so() -> None:
    calm = [Minute(60 * i, 0, 0, 0, 20.0, 2.0, 2, 2, 12, 0, 1.4) for i in range(2 * MIN_STEADY)]
    slots, note = fit_slots(calm, 100.0)
    assert slots == 2
    assert note is not None and "queue time never rose" in note and "lower bound" in note
    few = [replace(m, peak=2.5) for m in _queued(4)[: MIN_STEADY - 5]]
    slots, note = fit_slots(few, 100.0)
    assert slots == 3
    assert note is not None and "fewer than" in note


def test_the_fit_reads_service_time_slots_and_boot_from_minutes_and_events() -> None:
    from autoscaler.history import Event

    calm = [Minute(60 * i, 0, 10.0, 20, 20.0, 2.0, 2, 2, 12, 0, 1.0) for i in range(20)]
    busy = [m for m in _queued(4) if m.p50 > 100][:20]
    busy = [replace(m, t=1200 + 60 * i) for i, m in enumerate(busy)]
    # up 2 -> 4 at 2465; the two new instances serve from the minute at 2580
    booting = [
        Minute(2460 + 60 * i, 5, 10.0, 20, 60.0, 6.0, 4, 2 if i < 2 else 4, 12, 0, None)
        for i in range(5)
    ]
    events = [Event(2465.0, "web", "decision", "up 2 -> 4", "above_band", 2, 4)]
    f = fit(calm + busy + booting, events, (50.0, 200.0))
    assert f.service_ms == pytest.approx(100.0)  # 2 in service at 20/s
    assert f.concurrency == 4
    assert f.boot_s == pytest.approx(2580 + 60 - 2465 - 30)
    assert f.notes == []


def test_without_a_queue_time_the_slots_are_said_to_be_a_lower_bound() -> None:
    calm = [Minute(60 * i, 0, 0, 0, 20.0, 2.0, 2, 2, 12, 0, 1.4) for i in range(40)]
    f = fit(calm, [], (50.0, 200.0))
    assert f.concurrency == 2
    assert any("lower bound" in n for n in f.notes)
    assert any("boot time" in n for n in f.notes)


def test_minutes_without_a_rate_are_filled_from_the_previous_one_and_counted() -> None:
    rows = [
        Minute(0, 1, 1, 1, 2.0, None, 1, 1, 12, 0),
        Minute(120, 1, 1, 1, 3.0, None, 1, 1, 12, 0, None),
    ]
    text, filled = trace_csv(rows)
    assert text.splitlines() == ["time,requests", "0,120.000", "60,120.000", "120,180.000"]
    assert filled == 1
    assert Recorder is not None


def _simulate(trace: Path, service_ms: float, slots: int, boot_s: float) -> float:
    """Instance-hours of the configured policy, replayed by ``autoscaler simulate``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                *("simulate", "--trace", str(trace), "--service-ms", f"{service_ms:g}"),
                *("--concurrency", str(slots), "--boot", f"{boot_s:g}", "--json", "--jobs", "1"),
            ]
        )
    assert code == 0
    rows = json.loads(out.getvalue())
    return float(next(r["instance_hours"] for r in rows if r["policy"] == "default"))


@dataclass(frozen=True)
class RoundTrip:
    minutes: int
    fitted: Fit
    filled: int
    ran: float  # the instance-hours the daemon ran
    replayed: float | None  # the replay's (None: nothing fitted to replay with)


def _round_trip(job: tuple[int, Path]) -> RoundTrip:
    """A week of the daemon on the simulated app with seed ``job[0]``, exported to a trace in
    folder ``job[1]``, fitted and replayed by ``simulate`` (in a forked process of its own)."""
    seed, folder = job
    rows, events, ran = record_simulated(7.0, {"AUTOSCALER_SIM_SEED": str(seed)})
    f = fit(rows, events, (50.0, 200.0))
    text, filled = trace_csv(rows)
    replayed = None
    if f.service_ms is not None and f.concurrency is not None and f.boot_s is not None:
        trace = folder / "web.csv"
        trace.write_text(text)
        os.environ["AUTOSCALER_PROCESSES"] = "web"  # this process's own environment
        replayed = _simulate(trace, f.service_ms, f.concurrency, f.boot_s)
    return RoundTrip(len(rows), f, filled, ran, replayed)


ROUND_TRIP_SEEDS = (7, 1)


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory: pytest.TempPathFactory) -> dict[int, RoundTrip]:
    """Both seeds' round trips, in two forked processes (each is a week of ticks)."""
    jobs = [(seed, tmp_path_factory.mktemp(f"round-trip-{seed}")) for seed in ROUND_TRIP_SEEDS]
    with fork_pool(2) as pool:
        done = pool.map(_round_trip, jobs, chunksize=1)
    return dict(zip(ROUND_TRIP_SEEDS, done, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("seed", ROUND_TRIP_SEEDS)
def test_a_week_of_the_simulated_app_replayed_with_the_fit_costs_what_the_daemon_ran(
    round_trips: dict[int, RoundTrip], seed: int
) -> None:
    """The round trip: a week of the daemon on the simulated app (100 ms requests, 4 slots,
    20 s boot), exported and replayed by ``simulate`` with the fitted model. Seed 1 missed by
    13% while the capacity model learned overloads read at burst onsets, which the exported
    minutes smooth away (``benchmarks/bench_history.py --diagnose 1``, docs/dashboard.md)."""
    trip = round_trips[seed]
    assert trip.minutes == 7 * 1440
    f = trip.fitted
    assert f.service_ms == pytest.approx(100.0, rel=0.05)
    assert f.concurrency == 4
    assert f.boot_s is not None and 10.0 <= f.boot_s <= 30.0
    assert trip.filled == 0
    ran, replayed = trip.ran, trip.replayed
    print(f"round trip: the daemon ran {ran:.1f} instance-hours, the replay {replayed}")
    assert replayed == pytest.approx(ran, rel=0.10)


@pytest.mark.parametrize(
    "env",
    [
        {},  # the simulated app's default: a memory store, gone with the daemon
        {"AUTOSCALER_HISTORY": "memory"},
        {"AUTOSCALER_HISTORY": "off", "REDIS_URL": "redis://127.0.0.1:1/0"},
    ],
)
def test_tuning_on_own_traffic_needs_a_shared_history_store(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="no shared history store"):
        export_from_env(env, "web", 3600.0)
