"""The simulator's early signal: both app models report ``in_use`` (mean requests being served
at once over the window) as the middleware's busy time does, and the replayed engine gets it."""

from __future__ import annotations

from array import array

import pytest

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.model import Instant, Observation
from autoscaler.policy import PolicyConfig, PolicyState
from autoscaler.sim import baselines
from autoscaler.sim.fast import NOISE_K, FastModel, Queueing
from autoscaler.sim.live import LiveApp
from autoscaler.sim.model import RequestLog
from autoscaler.sim.runner import ExactModel, PolicySpec, Setup, prepare, replay
from autoscaler.sim.traces import Trace
from autoscaler.sources.sim import SimSource

STEPS = 20  # 100 s of 5 s steps: the 30 s window is full


def _fast_model(rates: list[float], n: int, noise_k: float = NOISE_K) -> FastModel:
    """``n`` instances of 4 slots of 100 ms (45 s boot) at ``rates``, 5 s steps."""
    return FastModel(
        rates,
        0.1,
        5.0,
        queueing=Queueing(4, 1.0),
        boot_s=45.0,
        slo_s=0.2,
        quantity=n,
        window_s=30.0,
        noise_k=noise_k,
    )


def _exact_model(rates: list[float], n: int) -> ExactModel:
    return ExactModel(rates, 0.1, 5.0, setup=Setup(exact=True, seed=3), boot_s=45.0, quantity=n)


def _fast(rate: float, n: int, noise_k: float = NOISE_K) -> float:
    model = _fast_model([rate] * STEPS, n, noise_k)
    for k in range(STEPS):
        model.step(k, n)
    return model.in_use


def _exact(rate: float, n: int) -> float:
    model = _exact_model([rate] * STEPS, n)
    for k in range(STEPS):
        model.step(k, n)
    return model.in_use


def test_the_fast_model_reports_the_load_until_every_slot_is_busy() -> None:
    # the expected figures (without the sampling noise)
    assert _fast(100.0, 4, 0.0) == pytest.approx(10.0)  # 100/s x 0.1 s (Little's law)
    assert _fast(300.0, 4, 0.0) == pytest.approx(16.0)  # past the 160/s capacity: all 16 slots
    assert _fast(0.0, 4, 0.0) == 0.0


def test_the_fast_models_readings_spread_as_the_exact_ones() -> None:
    """Sampling noise: the window's request count and requests in service vary around their
    means as the exact model's do (Poisson arrivals, the service times' spread), the requests
    in service never above the slots."""
    rate, n, steps = 100.0, 4, 1000

    def spread(xs: list[float]) -> float:
        mean = sum(xs) / len(xs)
        return float((sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5)

    got = []
    for model in (_fast_model([rate] * steps, n), _exact_model([rate] * steps, n)):
        counts, in_use = [], []
        for k in range(steps):
            _, count, _ = model.step(k, n)
            if k >= 10:
                counts.append(count)
                in_use.append(model.in_use)
        assert max(in_use) <= 16.0
        got.append((spread(counts), spread(in_use)))
    (fast_count, fast_use), (exact_count, exact_use) = got
    assert fast_count == pytest.approx(exact_count, rel=0.2)  # about sqrt(3000): 55
    assert fast_use == pytest.approx(exact_use, rel=0.2)


def test_the_request_log_cuts_each_service_time_at_the_bucket_edges() -> None:
    log = RequestLog(bucket_s=1.0)
    log.add(0.0, 0.5, 2.5)  # served from 0.5 to 2.5
    log.add(1.0, 1.0, 1.25)
    assert log.in_use(3.0, 3.0) == pytest.approx(2.25 / 3.0)
    assert log.in_use(2.0, 1.0) == pytest.approx(1.25)  # the second 1..2: one whole, a quarter
    assert log.in_use(2.5, 1.0) == pytest.approx(1.25)  # only whole buckets count


@pytest.mark.parametrize("exact", [False, True])
def test_the_replayed_engine_observes_in_use(monkeypatch: pytest.MonkeyPatch, exact: bool) -> None:
    seen: list[float | None] = []
    real = baselines.decide

    def spy(
        cfg: PolicyConfig, state: PolicyState, obs: Observation, now: Instant
    ) -> tuple[object, PolicyState]:
        seen.append(obs.in_use)
        return real(cfg, state, obs, now)

    monkeypatch.setattr(baselines, "decide", spy)
    trace = Trace("flat", 0.0, 60.0, array("d", [6000.0] * 10), None)  # 100 requests/s
    setup = Setup(service_ms=100.0, concurrency=4, exact=exact, seed=2)
    replay(prepare(trace, setup), setup, PolicySpec("default", 1, 40, PolicyConfig(high=40)))
    assert len(seen) == 120
    assert all(u is not None for u in seen)
    tail = [u for u in seen[12:] if u is not None]  # the window filled
    assert min(tail) == pytest.approx(10.0, rel=0.15) and max(tail) == pytest.approx(10.0, rel=0.15)


def test_the_built_in_sim_app_reports_in_use_from_quiet_to_swamped() -> None:
    clock = FakeClock()
    settings = load({"AUTOSCALER_SIM_SEED": "7"})
    app = LiveApp(settings, clock)
    web = SimSource(app, settings.processes["web"])
    clock.advance(120)  # before the burst: about 15 requests/s of 0.1 s on one instance
    quiet = web.sample(0.0).in_use
    assert quiet is not None and quiet == pytest.approx(1.5, rel=0.35)
    clock.advance(240)  # well into the burst: every one of the 4 slots busy
    assert web.sample(0.0).in_use == pytest.approx(4.0, rel=0.02)
