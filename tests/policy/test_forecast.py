"""The forecast (rule 7): what one instance carries, learned from the signal against the load per
instance; capacity kept for the arrival rate's recent mean plus ``HEADROOM`` spreads; probes
when only the forecast holds instances that stay quiet."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.model import Action, Instant, Observation, Reason, Status
from autoscaler.policy import (
    BIN_MEMORY,
    BIN_READINGS,
    DEFAULT_DOWN_DELAY,
    PROBE_AFTER,
    PROBE_HOLD,
    RATE_TAU,
    SHARE_BUDGET,
    SHARE_TAU,
    UP_LIMIT,
    PolicyConfig,
    PolicyState,
    decide,
    estimate,
    learn,
)

T = 10_000.0
TOP, UP = 125.0, 200.0  # the upper half of the default 50..200 ms band


def at(t: float) -> Instant:
    return Instant(t, 1_767_225_600.0 + t)


def capacity_from(bins: dict[int, tuple[float, int]], top: float, up: float) -> float | None:
    """The estimate when sure, else ``None``."""
    value, sure = estimate(bins, top, up)
    return value if sure else None


def read(bins: dict[int, tuple[float, int]], load: float, signal_ms: float, times: int):
    for _ in range(times):
        bins, _ = learn(bins, load, signal_ms)
    return bins


def known(load: float = 20.0) -> dict[int, tuple[float, int]]:
    """Bins in which ``load`` requests/s per instance kept the signal near the top of the band
    and a little more did not."""
    bins = read({}, load * 0.6, 40.0, BIN_READINGS)
    bins = read(bins, load, 150.0, BIN_READINGS)
    return read(bins, load * 1.1, 400.0, 2)


def test_capacity_is_unknown_until_a_load_near_the_top_of_the_band_is_read_often_enough():
    bins = read({}, 10.0, 40.0, 100)  # quiet at 10 requests/s: a loose lower bound only
    assert capacity_from(bins, TOP, UP) is None
    bins = read(bins, 20.0, 150.0, BIN_READINGS - 1)
    assert capacity_from(bins, TOP, UP) is None  # not yet often enough
    bins = read(bins, 20.0, 150.0, 1)
    capacity = capacity_from(bins, TOP, UP)
    assert capacity is not None and abs(capacity - 20.0) / 20.0 < 0.05  # bins are 5% wide


def test_capacity_is_the_last_load_before_the_mean_signal_goes_above_the_band():
    bins = known(20.0)
    bins = read(bins, 30.0, 100.0, BIN_READINGS)  # beyond a load already seen overloaded
    capacity = capacity_from(bins, TOP, UP)
    assert capacity is not None and capacity < 21.0
    assert capacity_from(read(bins, 22.0, 600.0, 2), TOP, UP) == capacity  # above it: no change
    # overloaded at less than seen near the top of the band: unknown again until read anew
    assert capacity_from(read(bins, 15.0, 500.0, 2), TOP, UP) is None


def test_a_bin_follows_its_recent_readings():
    bins = read({}, 20.0, 100.0, 200)
    bins = read(bins, 20.0, 300.0, 3 * BIN_MEMORY)  # the app got slower
    ((mean, n),) = bins.values()
    assert n == 200 + 3 * BIN_MEMORY
    assert mean > 280.0


def obs(cur: int, signal: float | None, rate: float | None, status: Status = Status.OK):
    return Observation(cur, signal, status, rate_per_s=rate)


def steady(mean: float, spread: float) -> PolicyState:
    """Capacity known (about 20 requests/s per instance) and an hour of arrival rates with this
    mean and spread."""
    bins = known(20.0)
    return PolicyState(
        bins=bins,
        capacity=capacity_from(bins, TOP, UP),
        sure=True,
        rate_mean=mean,
        rate_var=spread * spread,
        rate_at=T - 5,
        rate_since=T - 3600.0,
    )


def test_the_forecast_adds_instances_ahead_of_the_signal():
    state = steady(80.0, 20.0)
    assert state.capacity is not None and abs(state.capacity - 20.0) < 1.0
    decision, state = decide(PolicyConfig(high=40), state, obs(5, 100.0, 80.0), at(T))
    # the signal is in the band, but 80 + 1.8 * 20 = 116 requests/s need 6 instances
    assert (decision.action, decision.desired, decision.reason) == (Action.UP, 6, Reason.FORECAST)
    decision, _ = decide(
        PolicyConfig(high=40, headroom=0.0), steady(80.0, 20.0), obs(5, 100.0, 80.0), at(T)
    )
    assert decision.action is Action.HOLD  # HEADROOM 0: capacity for the current rate only


def test_headroom_is_kept_in_proportion_to_the_share_of_readings_above_the_band():
    cfg = PolicyConfig(high=40)
    # the record of the test above, with half the budget of readings above the band: 80 + 0.9 *
    # 20 = 98 requests/s fit in 5 instances, where a new record keeps 1.8 spreads (6 instances)
    half = steady(80.0, 20.0)
    half.over_share = SHARE_BUDGET / 2
    decision, _ = decide(cfg, half, obs(5, 100.0, 80.0), at(T))
    assert (decision.action, decision.reason) == (Action.HOLD, Reason.IN_BAND)
    fresh, _ = decide(cfg, steady(80.0, 20.0), obs(5, 100.0, 80.0), at(T))
    assert (fresh.action, fresh.desired, fresh.reason) == (Action.UP, 6, Reason.FORECAST)
    full = steady(80.0, 20.0)
    full.over_share = SHARE_BUDGET * 1.01  # (the reading inside the band lowers it a little)
    again, _ = decide(cfg, full, obs(5, 100.0, 80.0), at(T))
    assert (again.action, again.desired) == (Action.UP, 6)


def test_the_share_of_readings_above_the_band_is_weighted_over_hours():
    cfg = PolicyConfig(high=40)
    state = steady(80.0, 20.0)
    assert state.over_share is None  # a new record: it starts at the budget
    t = T
    for _ in range(int(SHARE_TAU / 5)):  # six hours inside the band
        _, state = decide(cfg, state, obs(6, 100.0, 80.0), at(t))
        t += 5
    assert state.over_share is not None
    assert math.isclose(state.over_share, SHARE_BUDGET * math.exp(-1.0), rel_tol=0.01)
    # a reading above the band counts at once, with the weight of its tick
    _, above = decide(cfg, state, obs(6, 300.0, 80.0), at(t))
    weight = 1.0 - math.exp(-5.0 / SHARE_TAU)
    assert above.over_share is not None
    assert math.isclose(above.over_share, state.over_share + weight * (1 - state.over_share))
    # an untrusted reading, or one without a rate, does not count
    _, missing = decide(cfg, state, obs(6, None, None, Status.MISSING), at(t))
    assert missing.over_share == state.over_share


def test_a_reading_above_the_band_during_a_burst_does_not_count_against_the_spare():
    """The share counts the readings above the band that a spare for the rate's usual spread
    might have carried: one during a burst (the rate beyond ``CLIP`` spreads above its mean)
    counts as one within the band; one at the usual rate counts."""
    cfg = PolicyConfig(high=40)
    state = steady(80.0, 20.0)
    state.over_share = SHARE_BUDGET / 2
    weight = 1.0 - math.exp(-5.0 / SHARE_TAU)
    # 80 + 3 * 20 = 140 requests/s is the edge: 200 requests/s is a burst, 130 is not
    _, burst = decide(cfg, state, obs(6, 300.0, 200.0), at(T))
    _, usual = decide(cfg, state, obs(6, 300.0, 130.0), at(T))
    _, calm = decide(cfg, state, obs(6, 100.0, 130.0), at(T))
    assert burst.over_share is not None and usual.over_share is not None
    assert math.isclose(burst.over_share, SHARE_BUDGET / 2 * (1 - weight))
    assert burst.over_share == calm.over_share
    assert math.isclose(usual.over_share, SHARE_BUDGET / 2 + weight * (1 - SHARE_BUDGET / 2))
    # a rate far below the mean is no burst: above the band there, the reading counts
    _, low = decide(cfg, state, obs(6, 300.0, 10.0), at(T))
    assert low.over_share == usual.over_share


def test_the_headroom_in_force_never_exceeds_headroom_and_is_zero_only_with_a_clean_record():
    from autoscaler.policy.load import over_share, spare

    assert spare(1.8, None) == spare(1.8, SHARE_BUDGET) == spare(1.8, 0.5) == 1.8
    assert math.isclose(spare(1.8, SHARE_BUDGET / 4), 1.8 / 4)
    assert spare(1.8, 0.0) == 0.0
    assert over_share(None, None, T, False) == SHARE_BUDGET  # the first reading: the start
    assert over_share(0.2, T, T, True) == 0.2  # no time passed: nothing to weigh


def test_the_mean_and_spread_follow_the_rate():
    cfg = PolicyConfig(high=40)
    state = PolicyState()
    t = T
    for i in range(2000):  # rates that swing between 60 and 100 requests/s
        _, state = decide(cfg, state, obs(10, 100.0, 60.0 if i % 2 else 100.0), at(t))
        t += 5
    assert state.rate_mean is not None and abs(state.rate_mean - 80.0) < 2.0
    assert abs(math.sqrt(state.rate_var) - 20.0) < 2.0


def test_the_spread_is_corrected_for_a_short_history():
    cfg = PolicyConfig(high=40)
    state = PolicyState()
    t = T
    for i in range(12):  # one minute: the weights given so far sum to far less than one
        _, state = decide(cfg, state, obs(5, 100.0, 60.0 if i % 2 else 100.0), at(t))
        t += 5
    assert state.rate_since == T
    raw = math.sqrt(state.rate_var)
    corrected = math.sqrt(state.rate_var / (1.0 - math.exp(-(t - 5 - T) / RATE_TAU)))
    assert raw < 10.0
    assert 15.0 < corrected < 35.0


def test_the_forecast_goes_to_the_need_at_once_within_max_and_the_per_tick_limit():
    state = PolicyState(bins=known(20.0), capacity=capacity_from(known(20.0), TOP, UP), sure=True)
    decision, _ = decide(PolicyConfig(high=40), state, obs(3, 100.0, 400.0), at(T))
    # 400 requests/s at about 20 each: 20 instances in one step (no doubling per cooldown)
    assert (decision.action, decision.desired, decision.reason) == (Action.UP, 20, Reason.FORECAST)
    decision, _ = decide(PolicyConfig(high=4), state, obs(3, 100.0, 400.0), at(T))
    assert decision.desired == 4
    decision, _ = decide(PolicyConfig(high=40), state, obs(1, 100.0, 400.0), at(T))
    assert decision.desired == UP_LIMIT  # from 1: at most UP_LIMIT times as many


def test_the_forecast_holds_a_downscale_it_would_undo():
    cfg = PolicyConfig(high=40, down_delay=60.0)
    t, state = T, steady(70.0, 5.0)
    for _ in range(20):  # quiet, but 3 instances at 20 requests/s each would not carry 79
        decision, state = decide(cfg, state, obs(4, 10.0, 70.0), at(t))
        t += 5
    assert (decision.action, decision.reason) == (Action.HOLD, Reason.HEADROOM)
    t, state = T, steady(40.0, 5.0)
    for _ in range(20):  # at 40 (49 with the spread), 3 would
        decision, state = decide(cfg, state, obs(4, 10.0, 40.0), at(t))
        t += 5
        if decision.action is Action.DOWN:
            break
    assert (decision.action, decision.desired, decision.reason) == (
        Action.DOWN,
        3,
        Reason.DOWN_TO_LOAD,
    )


def test_readings_count_only_with_the_formation_settled_and_enough_requests():
    cfg = PolicyConfig(high=40)  # settled: UP_COOLDOWN 60 s + WINDOW 30 s after a change
    state = PolicyState(last_change=T)
    _, state = decide(cfg, state, obs(4, 150.0, 80.0), at(T + 85))
    assert state.bins == {}
    _, state = decide(cfg, state, obs(4, 150.0, 80.0), at(T + 90))
    assert len(state.bins) == 1
    _, state = decide(cfg, PolicyState(), obs(1, 150.0, 9.0), at(T))  # 270 requests in 30 s
    assert state.bins == {}
    for status in (Status.SPARSE, Status.STALE, Status.FAILED, Status.MISSING):
        _, state = decide(cfg, PolicyState(), obs(4, 150.0, 80.0, status), at(T))
        assert state.bins == {}


def test_an_overload_read_while_the_rate_rises_is_not_learned():
    """At a burst's onset the window's mean rate lags the load that queued its requests: an
    overload read then would teach a capacity far below what the instances carry."""
    cfg = PolicyConfig(high=40)
    _, state = decide(cfg, PolicyState(), obs(4, 40.0, 80.0), at(T))
    assert len(state.bins) == 1  # steady and in the band: learned
    _, rising = decide(cfg, state, obs(4, 400.0, 120.0), at(T + 5))  # +40/s in 5 s
    assert rising.bins == state.bins
    _, steady = decide(cfg, state, obs(4, 400.0, 81.0), at(T + 5))  # within the count noise
    assert steady.bins != state.bins
    _, calm = decide(cfg, state, obs(4, 150.0, 120.0), at(T + 5))  # in the band: learned
    assert calm.bins != state.bins


def test_an_overload_longer_than_the_window_is_not_learned():
    """A wait longer than the window was queued by load from before it: the window's rate does
    not say what the instances carry."""
    cfg = PolicyConfig(high=40)  # WINDOW 30 s
    _, state = decide(cfg, PolicyState(), obs(4, 31_000.0, 80.0), at(T))
    assert state.bins == {}
    _, state = decide(cfg, PolicyState(), obs(4, 29_000.0, 80.0), at(T))
    assert len(state.bins) == 1


def test_a_long_quiet_spell_probes_below_the_forecast_and_learns_more():
    """Learned too low (a burst read as an overload): the forecast would keep too many for good.
    Quiet for PROBE_AFTER, one fewer is tried; the forecast then waits for settled readings,
    which show the instances carry more, and the capacity goes up."""
    cfg = PolicyConfig(high=40, down_delay=60.0)
    bins = known(10.0)
    state = PolicyState(bins=bins, capacity=capacity_from(bins, TOP, UP), sure=True)
    low = state.capacity
    assert low is not None and low < 11.0
    t, cur = T, 5
    decision = None
    while t < T + PROBE_AFTER + 60:  # 44 requests/s: 5 instances at 10, 4 would carry 11 each
        decision, state = decide(cfg, state, obs(cur, 10.0, 44.0), at(t))
        t += 5
        if decision.action is not Action.HOLD:
            break
    assert decision is not None
    assert (decision.action, decision.desired, decision.reason) == (Action.DOWN, 4, Reason.PROBE)
    assert t - 5 >= T + PROBE_AFTER
    cur = 4
    for _ in range(int(PROBE_HOLD // 5)):  # still quiet at 11 requests/s each
        decision, state = decide(cfg, state, obs(cur, 20.0, 44.0), at(t))
        t += 5
        assert decision.action is not Action.UP
    assert state.capacity is not None and state.capacity > 1.05 * low
    decision, state = decide(cfg, state, obs(cur, 20.0, 44.0), at(t))
    assert decision.action is Action.HOLD  # the forecast is satisfied with 4 now


def test_a_probe_that_overloads_is_undone_by_the_signal():
    cfg = PolicyConfig(high=40, down_delay=60.0)
    bins = known(10.0)
    state = PolicyState(bins=bins, capacity=capacity_from(bins, TOP, UP), sure=True, probe_at=T)
    decision, _ = decide(cfg, state, obs(4, 450.0, 44.0), at(T + 10))
    assert (decision.action, decision.reason) == (Action.UP, Reason.UP_TO_LOAD)
    assert decision.desired == 5  # 44 requests/s and a short backlog at about 10 each


@given(
    cur=st.integers(1, 20),
    signal=st.one_of(st.none(), st.floats(0, 5000)),
    rate=st.floats(0.1, 5000),
    status=st.sampled_from(list(Status)),
    load=st.floats(1.0, 100.0),
)
def test_with_a_forecast_decisions_stay_in_bounds_and_never_drop_on_an_untrusted_signal(
    cur: int, signal: float | None, rate: float, status: Status, load: float
) -> None:
    cfg = PolicyConfig(low=1, high=20)
    bins = known(load)
    state = PolicyState(
        bins=bins,
        capacity=capacity_from(bins, TOP, UP),
        sure=True,
        rate_mean=rate,
        rate_var=rate,
        rate_at=T,
    )
    state.rate_since = T - 3600.0
    decision, _ = decide(cfg, state, Observation(cur, signal, status, rate_per_s=rate), at(T + 5))
    assert 1 <= decision.desired <= min(20, UP_LIMIT * cur)
    trusted = signal is not None and status in (Status.OK, Status.SPARSE)
    if not trusted:
        assert decision.action is not Action.DOWN


def test_down_delay_has_one_default_whatever_is_learned():
    def first_downscale(cfg: PolicyConfig, state: PolicyState, rate: float | None) -> float:
        t = T
        while t < T + 3600:
            decision, state = decide(cfg, state, obs(6, 10.0, rate), at(t))
            if decision.action is Action.DOWN:
                return t - T
            t += 5
        raise AssertionError("never scaled down")

    default = PolicyConfig(high=40)
    assert default.down_delay == DEFAULT_DOWN_DELAY
    assert first_downscale(default, steady(20.0, 2.0), 20.0) == DEFAULT_DOWN_DELAY  # learned
    assert first_downscale(default, PolicyState(), 20.0) == DEFAULT_DOWN_DELAY  # nothing learned
    assert first_downscale(default, PolicyState(), None) == DEFAULT_DOWN_DELAY  # no rate (jobs)
    assert first_downscale(PolicyConfig(high=40, down_delay=600.0), steady(20.0, 2.0), 20.0) == 600


def test_an_upscale_is_the_step_or_the_forecast_whichever_is_more():
    state = steady(200.0, 0.0)  # 200 requests/s at about 20 each: 10 instances
    fixed = PolicyConfig(high=40, up_step=5)
    decision, _ = decide(fixed, state, obs(2, 5000.0, 200.0), at(T))
    assert (decision.action, decision.desired) == (Action.UP, 10)  # the forecast (more than 7)
    assert decision.reason is Reason.FORECAST
    decision, _ = decide(fixed, steady(100.0, 0.0), obs(2, 5000.0, 100.0), at(T))
    assert (decision.desired, decision.reason) == (7, Reason.ABOVE_BAND)  # the step (more than 5)


def test_an_overload_whose_queue_time_falls_is_not_learned():
    """A queue time falling above the band is a backlog draining: the instances start requests
    faster than they arrive, so the load per instance is not one they cannot carry (read as
    one, the waits left by a burst taught a capacity far below the instances')."""
    cfg = PolicyConfig(high=40)
    state = PolicyState(signal_last=2_000.0, rate_at=T - 5, rate_last=80.0)
    _, falling = decide(cfg, state, obs(4, 1_500.0, 80.0), at(T))
    assert falling.bins == {}
    _, rising = decide(cfg, state, obs(4, 2_500.0, 80.0), at(T))
    assert len(rising.bins) == 1  # a steady overload, still growing: learned
    _, calm = decide(cfg, state, obs(4, 150.0, 80.0), at(T))
    assert len(calm.bins) == 1  # back in the band: learned


def test_inside_the_band_a_clean_record_goes_down_to_what_the_load_needs():
    cfg = PolicyConfig(high=40)

    def clean(share: float | None = SHARE_BUDGET / 5, **fields: object) -> PolicyState:
        st = steady(80.0, 20.0)
        st.over_share = share
        for name, value in fields.items():
            setattr(st, name, value)
        return st

    # a fifth of the budget of readings above the band: 80 + 0.36 * 20 requests/s need 5
    # instances, not 8; the signal is in the band's lower half (100 ms, below 125 ms)
    decision, _ = decide(cfg, clean(), obs(8, 100.0, 80.0), at(T))
    assert (decision.action, decision.desired, decision.reason) == (
        Action.DOWN,
        5,
        Reason.DOWN_IN_BAND,
    )
    held = [
        # over half the budget used
        decide(cfg, clean(SHARE_BUDGET * 0.6), obs(8, 100.0, 80.0), at(T)),
        decide(cfg, clean(None), obs(8, 100.0, 80.0), at(T)),  # a new record
        decide(cfg, clean(), obs(8, 150.0, 80.0), at(T)),  # the band's upper half
        decide(cfg, clean(last_change=T - 60.0), obs(8, 100.0, 80.0), at(T)),  # a change
        # only a floor learned, which says no more than DOWN_STEP fewer: not sized by the load
        decide(cfg, clean(sure=False), obs(6, 100.0, 80.0), at(T)),
        decide(PolicyConfig(high=40, low=8), clean(), obs(8, 100.0, 80.0), at(T)),  # MIN 8
    ]
    assert [(d.action, d.reason) for d, _ in held] == [(Action.HOLD, Reason.IN_BAND)] * 6
    # a floor that says more than DOWN_STEP fewer sizes the trim as it sizes a downscale (the
    # instances carried that load per instance within the band)
    decision, _ = decide(cfg, clean(sure=False), obs(8, 100.0, 80.0), at(T))
    assert (decision.action, decision.desired, decision.reason) == (
        Action.DOWN,
        5,
        Reason.DOWN_IN_BAND,
    )
    # never below MIN: with MIN 6, to 6
    decision, _ = decide(PolicyConfig(high=40, low=6), clean(), obs(8, 100.0, 80.0), at(T))
    assert (decision.action, decision.desired, decision.reason) == (
        Action.DOWN,
        6,
        Reason.DOWN_IN_BAND,
    )
    # what the requests in service need counts: 22 in service (23 at the expected rate) at 3.5
    # per instance need 7
    busy = Observation(8, 100.0, Status.OK, rate_per_s=80.0, in_use=22.0)
    decision, _ = decide(cfg, clean(slots=3.5), busy, at(T))
    assert (decision.action, decision.desired, decision.reason) == (
        Action.DOWN,
        7,
        Reason.DOWN_IN_BAND,
    )
