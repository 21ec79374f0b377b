"""Properties of ``decide`` over arbitrary histories (Hypothesis)."""

from __future__ import annotations

import datetime as dt

from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.clock import FakeClock
from autoscaler.model import Action, Instant, Observation, Status
from autoscaler.policy import PolicyConfig, PolicyState, decide

statuses = st.sampled_from(list(Status))
signals = st.one_of(st.none(), st.floats(min_value=0, max_value=100_000, allow_nan=False))


@st.composite
def configs(draw):
    low = draw(st.integers(0, 5))
    high = draw(st.integers(max(low, 1), 20))
    down = draw(st.floats(0, 500))
    up = draw(st.floats(down + 1, 2000))
    return PolicyConfig(
        low=low,
        high=high,
        up_ms=up,
        down_ms=down,
        up_step=draw(st.integers(0, 4)),
        down_step=draw(st.integers(1, 3)),
        up_sensitivity=draw(st.sampled_from([0.0, 10.0, 30.0])),
        up_cooldown=draw(st.sampled_from([0.0, 30.0, 60.0])),
        down_delay=draw(st.sampled_from([0.0, 60.0, 300.0])),
        scale_from_zero=low == 0,
    )


ticks = st.lists(st.tuples(signals, statuses, st.floats(1, 120)), min_size=1, max_size=60)


def run(cfg, history, start=5, on_decision=None):
    """Drive decide like the loop does, applying every decision to the formation."""
    state, current, t = PolicyState(), start, 1000.0
    for signal, status, gap in history:
        t += gap
        obs = Observation(current, signal, status)
        decision, state = decide(cfg, state, obs, Instant(t, 1.7e9 + t))
        if on_decision is not None:
            on_decision(cfg, obs, decision, t)
        current = decision.desired
    return current


@settings(max_examples=300, deadline=None)
@given(configs(), ticks, st.integers(0, 25))
def test_quantity_never_leaves_the_bounds_once_inside(cfg, history, start):
    def check(cfg, obs, decision, t):
        if decision.reason.value == "disabled_manual_zero":
            return
        assert cfg.low <= decision.desired <= cfg.high

    run(cfg, history, start, check)


@settings(max_examples=300, deadline=None)
@given(configs(), ticks)
def test_no_downscale_on_missing_stale_or_failed_signal(cfg, history):
    def check(cfg, obs, decision, t):
        if obs.status in (Status.MISSING, Status.STALE, Status.FAILED) and obs.current <= cfg.high:
            assert decision.action is not Action.DOWN

    run(cfg, history, 5, check)


@settings(max_examples=300, deadline=None)
@given(configs(), ticks)
def test_at_most_one_downscale_per_down_delay(cfg, history):
    downs: list[float] = []

    def check(cfg, obs, decision, t):
        if decision.action is Action.DOWN and decision.reason.value == "below_band":
            if downs:
                assert t - downs[-1] >= cfg.down_delay
            downs.append(t)

    run(cfg, history, 8, check)


@settings(max_examples=500, deadline=None)
@given(
    configs(),
    st.integers(0, 25),
    st.floats(0, 50_000),
    st.floats(0, 50_000),
    st.sampled_from([Status.OK, Status.SPARSE]),
    st.builds(
        PolicyState,
        st.none() | st.integers(0, 25),
        st.none() | st.floats(0, 1000),
        st.none() | st.floats(0, 1000),
        st.none() | st.floats(0, 1000),
        st.none() | st.floats(0, 1000),
    ),
)
def test_a_higher_signal_never_yields_fewer_instances(cfg, current, a, b, status, state):
    low, high = sorted((a, b))
    now = Instant(1000.0, 1.7e9)
    d_low, _ = decide(cfg, state, Observation(current, low, status), now)
    d_high, _ = decide(cfg, state, Observation(current, high, status), now)
    assert d_high.desired >= d_low.desired


@settings(max_examples=100, deadline=None)
@given(st.floats(-30 * 86400, 30 * 86400))
def test_wall_clock_jumps_do_not_shorten_cooldowns(jump):
    """Cooldowns run on monotonic time: moving the wall clock (freezegun) changes nothing."""
    cfg = PolicyConfig(up_cooldown=60.0, down_delay=300.0)
    clock = FakeClock()
    with freeze_time(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)) as frozen:
        d, state = decide(cfg, PolicyState(), Observation(3, 500.0), clock.now())
        assert d.action is Action.UP
        clock.advance(10)
        clock.jump_wall(jump)
        frozen.tick(dt.timedelta(seconds=jump if jump > 0 else 0))
        d, state = decide(cfg, state, Observation(d.desired, 500.0), clock.now())
        assert d.reason.value == "up_cooldown"
        d, state = decide(cfg, state, Observation(d.desired, 10.0), clock.now())
        clock.advance(200)
        clock.jump_wall(jump)
        d, _ = decide(cfg, state, Observation(d.desired, 10.0), clock.now())
        assert d.action is Action.HOLD


def test_deciding_twice_on_the_same_input_is_idempotent():
    cfg = PolicyConfig()
    state = PolicyState(3, None, 900.0, None, None)
    now = Instant(1000.0, 1.7e9)
    d1, s1 = decide(cfg, state, Observation(3, 10.0), now)
    d2, s2 = decide(cfg, state, Observation(3, 10.0), now)
    assert (d1, s1) == (d2, s2)
