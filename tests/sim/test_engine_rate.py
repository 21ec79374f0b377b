"""The engine's use of a reported arrival rate for rate-sized ``auto`` upscales (rule 6); the
forecast (rules 7 and 8) is in ``tests/policy/test_forecast.py``. Without a rate the engine is
unchanged (``tests/policy``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.model import Action, Instant, Observation, Reason, Status
from autoscaler.policy import PolicyConfig, PolicyState, decide, rate_step

T = 10_000.0


def at(t: float) -> Instant:
    return Instant(t, 1_767_225_600.0 + t)


def test_rate_step_brings_each_instance_back_to_the_healthy_rate() -> None:
    assert rate_step(4, 100.0, 20.0) == 1  # needs 5
    assert rate_step(4, 130.0, 20.0) == 3  # needs 7
    assert rate_step(4, 400.0, 20.0) == 4  # needs 20, at most doubling
    assert rate_step(4, 50.0, 20.0) == 1  # needs 3: still at least one
    assert rate_step(0, 50.0, 20.0) == 1


def test_the_healthy_rate_is_learned_in_band_and_sizes_the_upscale() -> None:
    cfg = PolicyConfig(high=40)
    _, state = decide(cfg, PolicyState(), Observation(4, 120.0, Status.OK, rate_per_s=80.0), at(T))
    assert state.healthy_rate == 20.0  # 80 requests/s on 4 instances, inside the band
    _, state = decide(cfg, state, Observation(4, 30.0, Status.OK, rate_per_s=60.0), at(T + 5))
    assert state.healthy_rate == 20.0  # the highest is kept
    decision, state = decide(
        cfg, state, Observation(4, 900.0, Status.OK, rate_per_s=110.0), at(T + 10)
    )
    # the queue-time ratio alone would double (900/200); the rate says 110/20 -> 6 instances
    assert (decision.action, decision.desired, decision.reason) == (
        Action.UP,
        6,
        Reason.ABOVE_BAND,
    )
    assert state.healthy_rate == 20.0  # not learned from an overloaded tick


def test_without_a_rate_or_a_healthy_rate_auto_uses_the_queue_time_ratio() -> None:
    cfg = PolicyConfig(high=40)
    decision, _ = decide(cfg, PolicyState(), Observation(4, 900.0, Status.OK), at(T))
    assert decision.desired == 8
    decision, state = decide(
        cfg, PolicyState(), Observation(4, 900.0, Status.OK, rate_per_s=110.0), at(T)
    )
    assert decision.desired == 8 and state.healthy_rate is None  # nothing learned yet


def test_untrusted_and_sparse_signals_teach_nothing() -> None:
    cfg = PolicyConfig(high=40)
    for status in (Status.SPARSE, Status.STALE, Status.FAILED):
        obs = Observation(4, 20.0, status, rate_per_s=80.0)
        _, state = decide(cfg, PolicyState(), obs, at(T))
        assert state.healthy_rate is None
    obs = Observation(4, None, Status.MISSING, rate_per_s=0.0)
    _, state = decide(cfg, PolicyState(), obs, at(T))
    assert state.healthy_rate is None


def test_a_fixed_up_step_and_a_sparse_signal_ignore_the_rate() -> None:
    state = PolicyState(healthy_rate=5.0)
    fixed = PolicyConfig(high=40, up_step=2)
    decision, _ = decide(fixed, state, Observation(4, 900.0, Status.OK, rate_per_s=200.0), at(T))
    assert decision.desired == 6
    obs = Observation(4, 900.0, Status.SPARSE, rate_per_s=200.0)
    sparse, _ = decide(PolicyConfig(high=40), state, obs, at(T))
    assert sparse.desired == 5


def test_a_rate_learned_on_a_quiet_formation_does_not_block_downscales() -> None:
    """After a restart with more instances than the load needs, the highest per-instance rate
    seen in band is only what they happened to carry: it must not hold them all (what guards
    downscales is the forecast, once it has learned near the top of the band)."""
    cfg = PolicyConfig(high=40)
    state = PolicyState()
    t = T
    for _ in range(61):  # 6 instances, 20 requests/s, quiet for DOWN_DELAY (auto: 5 minutes)
        decision, state = decide(cfg, state, Observation(6, 5.0, Status.OK, rate_per_s=20.0), at(t))
        t += 5
    assert state.healthy_rate is not None and state.healthy_rate < 4.0
    assert (decision.action, decision.desired, decision.reason) == (
        Action.DOWN,
        5,
        Reason.BELOW_BAND,
    )


@given(
    current=st.integers(1, 50),
    signal=st.floats(0.0, 1e6),
    rate=st.floats(0.0, 1e6),
    healthy=st.floats(0.01, 1e4),
)
def test_rate_aware_decisions_stay_in_bounds_and_at_most_double(
    current: int, signal: float, rate: float, healthy: float
) -> None:
    cfg = PolicyConfig(high=60)
    state = PolicyState(current, None, T - 1000, None, T - 1000, healthy_rate=healthy)
    obs = Observation(current, signal, Status.OK, rate_per_s=rate)
    decision, after = decide(cfg, state, obs, at(T))
    assert 1 <= decision.desired <= 60
    assert decision.desired <= 2 * current
    assert decision.desired >= current - 1
    assert after.healthy_rate is not None and after.healthy_rate >= healthy
