"""The fast model against the exact request-level model on small real traces: p95 queue time
within 10%, for a fixed formation (one seed) and for the configured policy, which closes the
loop (there both models are random through the signal's sampling noise, so the test compares
their means over six seeds)."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import pytest

from autoscaler.policy import PolicyConfig
from autoscaler.sim.runner import PolicySpec, Result, Setup, prepare, replay
from autoscaler.sim.traces import Trace, read_trace

DATA = Path(__file__).parent.parent / "data" / "traces"


def nasa() -> Trace:
    return read_trace(DATA / "nasa-slice-2h.csv.gz")


def wc98_before_the_flash_crowd() -> Trace:
    whole = read_trace(DATA / "wc98-slice-6h.csv")
    return Trace(whole.path, whole.start, whole.width, whole.counts[:170], None)


def run(trace: Trace, spec: PolicySpec, *, exact: bool, seed: int) -> Result:
    setup = Setup(peak_instances=5, exact=exact, seed=seed)
    return replay(prepare(trace, setup), setup, spec)


TRACES = [nasa, wc98_before_the_flash_crowd]
SEEDS = range(1, 7)


@pytest.mark.parametrize("trace", TRACES)
def test_agree_on_a_fixed_formation(trace: object) -> None:
    assert callable(trace)
    spec = PolicySpec("static", 1, 40)
    fast = run(trace(), spec, exact=False, seed=1)
    exact = run(trace(), spec, exact=True, seed=1)
    assert exact.p95_queue_ms > 20  # a real queue, not two zeros
    assert fast.p95_queue_ms == pytest.approx(exact.p95_queue_ms, rel=0.10)
    assert fast.p99_queue_ms == pytest.approx(exact.p99_queue_ms, rel=0.10)
    assert fast.minutes == exact.minutes


@pytest.mark.parametrize("trace", TRACES)
def test_agree_under_the_configured_policy(trace: object) -> None:
    assert callable(trace)
    spec = PolicySpec("default", 1, 40, PolicyConfig(high=40))
    fast = [run(trace(), spec, exact=False, seed=s) for s in SEEDS]
    exact = [run(trace(), spec, exact=True, seed=s) for s in SEEDS]
    assert mean(r.p95_queue_ms for r in exact) > 20
    assert mean(r.p95_queue_ms for r in fast) == pytest.approx(
        mean(r.p95_queue_ms for r in exact), rel=0.10
    )
    assert mean(r.instance_hours for r in fast) == pytest.approx(
        mean(r.instance_hours for r in exact), rel=0.10
    )
    assert any(r.scale_events > 0 for r in exact)


def test_a_run_over_part_of_a_trace_gives_the_oracle_that_parts_needs() -> None:
    setup = Setup(peak_instances=5)
    prepared = prepare(nasa(), setup)
    half = len(prepared.steps) // 2
    whole = replay(prepared, setup, PolicySpec("oracle", 1, 40))
    part = replay(prepared, setup, PolicySpec("oracle", 1, 40), start=half)
    tail = sum(prepared.needs[half:]) * prepared.steps.dt / 3600.0
    assert whole.slo_attainment >= 0.99
    assert part.slo_attainment >= 0.99
    assert part.instance_hours == pytest.approx(tail, rel=0.02)
