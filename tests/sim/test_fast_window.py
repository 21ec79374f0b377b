"""The fast model's window reads what the middleware records (and the exact model reads): the
requests that started in the last ``window_s``, a request's queue time known when it starts, and
the p95 of those requests' queue times."""

from __future__ import annotations

import math
import random

import pytest

from autoscaler.sim.fast import FastModel, Queueing, _tail_quantile
from autoscaler.sim.runner import ExactModel, Setup

DT = 5.0
CAPACITY = 40.0  # one instance: 4 slots of 100 ms


def _overload(steps_over: int, steps: int) -> list[float]:
    """Twice one instance's capacity for ``steps_over`` steps, then half of it."""
    return [2 * CAPACITY if k < steps_over else CAPACITY / 2 for k in range(steps)]


def _fast_model(
    rates: list[float], quantity: int = 1, router_queue: int | None = None
) -> FastModel:
    """``quantity`` instances (one by default) of 4 slots of 100 ms, a 45 s boot, without
    sampling noise, with the router limit given (none by default)."""
    return FastModel(
        rates,
        0.1,
        DT,
        queueing=Queueing(4, 1.0),
        boot_s=45.0,
        slo_s=0.2,
        quantity=quantity,
        window_s=30.0,
        noise_k=0.0,
        router_queue=router_queue,
    )


def _exact_model(rates: list[float], seed: int) -> ExactModel:
    return ExactModel(rates, 0.1, DT, setup=Setup(exact=True, seed=seed), boot_s=45.0, quantity=1)


def _fast(rates: list[float]) -> list[tuple[float | None, float]]:
    model = _fast_model(rates)
    return [model.step(k, 1)[:2] for k in range(len(rates))]


def _exact(rates: list[float], seed: int) -> list[tuple[float | None, float]]:
    model = _exact_model(rates, seed)
    return [model.step(k, 1)[:2] for k in range(len(rates))]


def test_the_window_counts_the_requests_that_started_not_those_that_arrived() -> None:
    fast = _fast(_overload(12, 12))
    exact = [_exact(_overload(12, 12), seed) for seed in (1, 2, 3)]
    # 30 s at the instance's capacity start, though twice as many arrive
    assert fast[-1][1] == pytest.approx(CAPACITY * 30.0)
    assert fast[-1][1] == pytest.approx(sum(e[-1][1] for e in exact) / 3, rel=0.05)


def test_a_draining_backlog_reads_the_waits_of_the_requests_that_start() -> None:
    # 60 s at twice the capacity, then half of it: first in, first out, the request starting at
    # t (until the backlog drains at 120 s) arrived at t / 2, so it waited t / 2
    rates = _overload(12, 20)
    fast = _fast(rates)
    t = 100.0  # 40 s after the overload: the window's starters waited 35 s to 50 s
    p95 = fast[round(t / DT) - 1][0]
    assert p95 is not None
    assert p95 / 1000.0 == pytest.approx(t / 2 - 0.05 * 15.0, abs=1.0)
    exact = [_exact(rates, seed)[round(t / DT) - 1][0] for seed in (1, 2, 3)]
    assert p95 == pytest.approx(sum(e or 0.0 for e in exact) / 3, rel=0.1)


def test_the_window_p95_at_the_end_of_an_overload_is_the_exact_models() -> None:
    # the waits rise through the window: its p95 is that of its requests, near the latest
    # step's, not the mean of its steps' p95s
    rates = _overload(12, 12)
    fast = _fast(rates)[-1][0]
    exact = [_exact(rates, seed)[-1][0] for seed in (1, 2, 3)]
    assert fast is not None
    assert fast / 1000.0 == pytest.approx(30.0 - 0.05 * 15.0, abs=1.0)  # starters: t / 2
    assert fast == pytest.approx(sum(e or 0.0 for e in exact) / 3, rel=0.1)


def _over(terms: list[tuple[float, float, float]], x: float) -> float:
    return sum(c * math.exp(-theta * max(0.0, x - knee)) for c, knee, theta in terms)


@pytest.mark.parametrize("seed", range(20))
def test_the_window_quantile_is_where_the_share_over_it_is_the_tail(seed: int) -> None:
    rng = random.Random(seed)
    terms = [
        (rng.uniform(0.0, 500.0), rng.uniform(-3.0, 40.0), rng.uniform(0.2, 50.0))
        for _ in range(rng.randint(1, 12))
    ]
    total = sum(c for c, _, _ in terms)
    for tail in (0.0005, 0.05, 0.3):
        x = _tail_quantile(terms, tail * total)
        if x == 0.0:
            assert _over(terms, 0.0) <= tail * total
        else:
            assert _over(terms, x) == pytest.approx(tail * total, rel=1e-3)


def test_the_window_quantile_is_not_the_mean_of_the_steps_quantiles() -> None:
    # half the requests wait 0 to 1 s, half 10 to 11 s: 10% of the latter are above the p95
    theta = 5.0
    terms = [(100.0, 0.0, theta), (100.0, 10.0, theta)]
    x = _tail_quantile(terms, 10.0)
    assert x == pytest.approx(10.0 + math.log(10.0) / theta, abs=1e-3)


def _flash_then_upscale(model: FastModel | ExactModel, rates: list[float]) -> list[float | None]:
    """One instance, two from 30 s and ten from 120 s (each ready 45 s later)."""
    out = []
    quantity = 1
    for k in range(len(rates)):
        if k in {6, 24}:
            quantity = 2 if k == 6 else 10
            model.scale(quantity, k * DT)
        out.append(model.step(k, quantity)[0])
    return out


def test_the_first_instances_keep_the_backlog_they_built_after_an_upscale() -> None:
    # five times one instance's capacity: the first instance builds a backlog alone for 75 s,
    # then with the second (each at 2.5 times its capacity) until 165 s, the first on top of
    # its own; the eight that join then hold no queue, so the first two drain theirs at
    # 40 - 20 requests/s, the first for longest, while their starters' waits rise: the window's
    # p95 keeps rising for minutes (pooled over the instances, the backlog would drain sooner)
    rates = [5 * CAPACITY] * 130
    fast = _flash_then_upscale(_fast_model(rates), rates)
    exact = [_flash_then_upscale(_exact_model(rates, seed), rates) for seed in (1, 2, 3)]
    for t in (300.0, 450.0, 600.0):
        k = round(t / DT) - 1
        p95 = fast[k]
        assert p95 is not None
        mean = sum(e[k] or 0.0 for e in exact) / 3
        assert p95 == pytest.approx(mean, rel=0.05), t


def test_the_deepest_queue_is_the_most_one_instance_held() -> None:
    """Twice one instance's capacity for 4 steps queues 40 requests/s for 20 s: 800 at the end
    of the fourth step; then half its capacity drains 20 a second, 40 s. ``deepest`` keeps the
    most; it is per instance, so two instances fed twice the rate hold as much each."""
    model = _fast_model(_overload(4, 12))
    for k in range(12):
        model.step(k, 1)
    assert model.deepest == pytest.approx(800.0)
    assert model.backlog == pytest.approx(0.0, abs=1e-6)
    two = _fast_model([2 * r for r in _overload(4, 12)], quantity=2)
    for k in range(12):
        two.step(k, 2)
    assert two.deepest == pytest.approx(800.0)
    assert two.backlog == pytest.approx(0.0, abs=1e-6)
    fresh = _fast_model([CAPACITY / 2] * 6)
    for k in range(6):
        fresh.step(k, 1)
    assert fresh.deepest == 0.0


def test_a_router_limit_keeps_the_queue_full_and_refuses_the_rest() -> None:
    """Twice one instance's capacity for 4 steps with at most 100 waiting: each 5 s step queues
    200 more, so 100 are refused in the first and 200 in each of the next three (700); the queue
    stays at 100, which half the capacity then drains in 5 s. The refused count over the SLO
    in their minute, and never start."""
    rates = _overload(4, 12)
    limited = _fast_model(rates, router_queue=100)
    started = 0.0
    for k in range(12):
        _, count, _ = limited.step(k, 1)
        if k == 3:
            started = count  # the window's requests: those that started, at capacity
    assert limited.refused == pytest.approx(700.0)
    assert limited.deepest == pytest.approx(100.0)
    assert limited.backlog == pytest.approx(0.0, abs=1e-6)
    assert started == pytest.approx(CAPACITY * 20.0)
    assert limited.minute_bad[0] >= 700.0
    free = _fast_model(rates)
    for k in range(12):
        free.step(k, 1)
    assert free.refused == 0.0 and free.deepest == pytest.approx(800.0)
    with pytest.raises(ValueError):
        _fast_model(rates, router_queue=-1)
