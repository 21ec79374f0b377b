"""Items 4 and 5 of issue 11 through ``decide``: downscales sized to the load and held by a
stabilisation window; upscales sized to the load and the backlog; one reason per path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.model import Action, Instant, Observation, Reason, Status
from autoscaler.policy import BIN_READINGS, UP_LIMIT, PolicyConfig, PolicyState, decide, learn

T = 10_000.0


def at(t: float) -> Instant:
    return Instant(t, 1_767_225_600.0 + t)


def carrying(per_instance: float, sure: bool = True) -> PolicyState:
    """What one instance carries known: ``per_instance`` requests/s (sure or only a floor)."""
    bins: dict[int, tuple[float, int]] = {}
    for _ in range(BIN_READINGS):
        bins, _ = learn(bins, per_instance, 150.0 if sure else 20.0)
    return PolicyState(bins=bins, capacity=per_instance, sure=sure)


def run(cfg, state, cur, ticks, signal, rate, start=T):
    """Feed ``ticks`` observations 5 s apart, applying each decision; the decisions."""
    out = []
    t = start
    for _ in range(ticks):
        decision, state = decide(cfg, state, Observation(cur, signal, rate_per_s=rate), at(t))
        out.append((t, decision))
        cur = decision.desired
        t += 5.0
    return out, state, cur


def test_after_a_burst_the_downscale_goes_to_what_the_load_needs_in_one_step():
    cfg = PolicyConfig(high=60, down_delay=120.0, headroom=0.0)
    decisions, _, cur = run(cfg, carrying(20.0), 36, 30, 10.0, 50.0)  # quiet at 50 requests/s
    downs = [(t, d) for t, d in decisions if d.action is Action.DOWN]
    assert len(downs) == 1
    t, d = downs[0]
    assert (d.desired, d.reason) == (3, Reason.DOWN_TO_LOAD)
    assert t - T == 120.0  # after DOWN_DELAY, not one instance per DOWN_DELAY
    assert cur == 3


def test_the_window_holds_the_highest_recommendation_of_down_delay():
    cfg = PolicyConfig(high=60, down_delay=120.0, headroom=0.0)
    state = carrying(20.0)
    _, state, cur = run(cfg, state, 20, 12, 10.0, 200.0)  # a minute needing 10
    decisions, _, cur = run(cfg, state, cur, 13, 10.0, 50.0, start=T + 60)  # then 3
    downs = [d for _, d in decisions if d.action is Action.DOWN]
    assert [d.desired for d in downs] == [10]  # the 10 still in the window at T+120
    decisions, _, cur = run(cfg, state, 10, 30, 10.0, 50.0, start=T + 300)
    assert cur == 3


def test_never_below_min_nor_on_a_missing_signal():
    cfg = PolicyConfig(low=4, high=60, down_delay=60.0, headroom=0.0)
    _, _, cur = run(cfg, carrying(20.0), 12, 40, 10.0, 20.0)
    assert cur == 4
    state = carrying(20.0)
    cur = 12
    for i in range(60):
        d, state = decide(cfg, state, Observation(cur, None, Status.MISSING), at(T + 5 * i))
        assert d.action is Action.HOLD
        cur = d.desired


def test_with_only_a_floor_the_downscale_is_a_step_or_what_the_floor_says_whichever_is_lower():
    cfg = PolicyConfig(high=60, down_delay=60.0, headroom=0.0)
    # the floor (about 10 each) says 200 requests/s need 20: no fewer than 20 - 1, so one step
    decisions, _, _ = run(cfg, carrying(10.0, sure=False), 20, 13, 10.0, 200.0)
    assert [(d.desired, d.reason) for _, d in decisions if d.action is Action.DOWN] == [
        (19, Reason.BELOW_BAND)
    ]
    # at 30 requests/s the floor says 3: fewer than a step, and safe (they carried 10 each)
    decisions, _, _ = run(cfg, carrying(10.0, sure=False), 20, 13, 10.0, 30.0)
    assert [(d.desired, d.reason) for _, d in decisions if d.action is Action.DOWN] == [
        (3, Reason.DOWN_TO_LOAD)
    ]


def test_after_a_downscale_one_sized_by_the_load_follows_the_window_down():
    """The window already holds the highest recommendation of DOWN_DELAY: after a downscale,
    the next one sized by the load comes as soon as the window says fewer and the signal's
    window shows the formation, not DOWN_DELAY after the last; a step (nothing known) waits."""
    cfg = PolicyConfig(high=60, down_delay=120.0, headroom=0.0)
    state, cur, downs = carrying(20.0), 40, []
    for i in range(60):  # 400 requests/s for a minute, 300 for one, then 100
        t = T + 5.0 * i
        rate = 400.0 if i < 12 else 300.0 if i < 24 else 100.0
        d, state = decide(cfg, state, Observation(cur, 10.0, rate_per_s=rate), at(t))
        if d.action is Action.DOWN:
            downs.append((t - T, d.desired, d.reason))
        cur = d.desired
    assert downs == [
        (120.0, 20, Reason.DOWN_TO_LOAD),  # the 400 requests/s of T+55 still in the window
        (175.0, 15, Reason.DOWN_TO_LOAD),  # they left it: the 300 of T+115
        (235.0, 5, Reason.DOWN_TO_LOAD),
    ]
    decisions, _, _ = run(cfg, PolicyState(), 20, 60, 10.0, None)  # nothing known: steps
    assert [t - T for t, d in decisions if d.action is Action.DOWN] == [120.0, 240.0]


def test_a_load_carried_quietly_sizes_the_downscale_when_nothing_else_does():
    """Nothing learned of what one instance carries (a flash crowd ended: its readings were
    overloads while the rate rose), but 40 instances carried 400 requests/s with the signal
    below the band: 10 each is a floor, so when the rate falls to 20 requests/s the downscale
    goes to 2 at once, not one instance per DOWN_DELAY."""
    cfg = PolicyConfig(high=60, down_delay=120.0, headroom=0.0)
    _, state, cur = run(cfg, PolicyState(), 40, 6, 10.0, 400.0)
    assert state.quiet == 10.0 and state.capacity is None
    decisions, _, cur = run(cfg, state, cur, 30, 0.0, 20.0, start=T + 30)
    downs = [(t, d.desired, d.reason) for t, d in decisions if d.action is Action.DOWN]
    # the window still holds the one step recommended at 400 requests/s; then what 20 need
    assert downs == [(T + 120.0, 39, Reason.BELOW_BAND), (T + 150.0, 2, Reason.DOWN_TO_LOAD)]
    assert cur == 2


def test_a_quiet_reading_counts_only_below_the_band_and_settled_and_outlives_the_stretch():
    """A load carried quietly is a floor until an overload says otherwise: the signal leaving
    the band's bottom does not forget it, so the next stretch below the band (after a burst
    whose readings taught nothing) goes down to what the floor says at once."""
    cfg = PolicyConfig(high=60, down_delay=120.0, headroom=0.0)
    _, state, _ = run(cfg, PolicyState(), 40, 3, 100.0, 400.0)  # in the band: not quiet
    assert state.quiet is None
    unsettled = PolicyState(last_change=T - 10.0)  # the window still shows the old formation
    _, state, _ = run(cfg, unsettled, 40, 3, 10.0, 400.0)
    assert state.quiet is None
    _, state, _ = run(cfg, PolicyState(), 40, 3, 10.0, 400.0)
    assert state.quiet == 10.0
    _, state, _ = run(cfg, state, 40, 1, 100.0, 400.0, start=T + 15)  # the stretch ends
    assert state.quiet == 10.0
    # a new stretch at 20 requests/s: 10 each carried quietly, so 2 once DOWN_DELAY is over
    decisions, _, _ = run(cfg, state, 40, 26, 0.0, 20.0, start=T + 20)
    assert [(d.desired, d.reason) for _, d in decisions if d.action is Action.DOWN] == [
        (2, Reason.DOWN_TO_LOAD)
    ]


def test_an_overload_at_the_quiet_load_or_less_forgets_it():
    """Settled instances overloaded at 10 requests/s each or less: the app got slower, and the
    floor read quietly at 10 no longer holds. An overload just after an upscale (the window
    still counts what the fewer instances served) says nothing of it."""
    cfg = PolicyConfig(high=60, down_delay=120.0, headroom=0.0)
    _, quiet, _ = run(cfg, PolicyState(), 40, 3, 10.0, 400.0)
    assert quiet.quiet == 10.0
    _, state, _ = run(cfg, quiet, 40, 1, 300.0, 440.0, start=T + 15)  # 11 each: more than 10
    assert state.quiet == 10.0
    _, state, _ = run(cfg, quiet, 40, 1, 300.0, 360.0, start=T + 15)  # 9 each, settled
    assert state.quiet is None
    just_up = PolicyState(last_change=T + 10.0, last_up=T + 10.0, quiet=10.0)
    _, state, _ = run(cfg, just_up, 40, 1, 300.0, 360.0, start=T + 15)
    assert state.quiet == 10.0
    just_down = PolicyState(last_change=T + 10.0, last_down=T + 10.0, quiet=10.0)
    _, state, _ = run(cfg, just_down, 40, 1, 300.0, 360.0, start=T + 15)
    assert state.quiet is None


def test_in_the_band_nothing_is_scaled_down():
    """The load sizes a downscale only once the signal says there is room (below the band): in
    the band, the instances are about as many as the load needs at the SLO."""
    cfg = PolicyConfig(high=60, down_delay=60.0, headroom=0.0)
    decisions, _, cur = run(cfg, carrying(20.0), 10, 30, 120.0, 60.0)
    assert {d.reason for _, d in decisions} == {Reason.IN_BAND}
    assert cur == 10


def test_a_cold_start_from_a_small_formation_reaches_the_need_in_one_or_two_steps():
    cfg = PolicyConfig(high=100, up_cooldown=60.0)
    cur, state, t, ups = 2, carrying(25.0), T, []
    while t < T + 600:  # 800 requests/s: 32 instances, the queue time high until they serve
        d, state = decide(cfg, state, Observation(cur, 3000.0, rate_per_s=800.0), at(t))
        if d.action is Action.UP:
            ups.append(d)
        cur = d.desired
        t += 5.0
        if cur >= 32:
            break
    assert 1 <= len(ups) <= 2 and cur >= 32
    assert ups[0].desired == 2 * UP_LIMIT  # the per-tick limit
    assert ups[0].reason is Reason.UP_TO_LOAD


def test_the_backlog_adds_instances():
    cfg = PolicyConfig(high=100)
    small, _ = decide(cfg, carrying(25.0), Observation(8, 250.0, rate_per_s=250.0), at(T))
    big, _ = decide(cfg, carrying(25.0), Observation(8, 60_000.0, rate_per_s=250.0), at(T))
    assert small.desired == 11  # 250 / 25 + a short backlog
    assert big.desired > small.desired + 3
    assert small.reason is big.reason is Reason.UP_TO_LOAD


def test_with_only_floors_an_upscale_sizes_on_the_higher_one():
    """Nothing sure learned: the learned floor (10 requests/s each) and the load carried quietly
    (20 each, read below the band before this overload) are both floors, and the higher one
    sizes the upscale (with nothing learned at all, the overload alone sizes it)."""
    cfg = PolicyConfig(high=100, headroom=0.0)
    floor = carrying(10.0, sure=False)
    d, _ = decide(cfg, floor, Observation(8, 250.0, rate_per_s=250.0), at(T))
    assert (d.desired, d.reason) == (26, Reason.UP_TO_LOAD)  # 250 / 10 + a short backlog
    floor.quiet = 20.0
    d, _ = decide(cfg, floor, Observation(8, 250.0, rate_per_s=250.0), at(T))
    assert (d.desired, d.reason) == (13, Reason.UP_TO_LOAD)  # 250 / 20 + a short backlog
    quiet_only = PolicyState(quiet=20.0)
    d, _ = decide(cfg, quiet_only, Observation(8, 250.0, rate_per_s=250.0), at(T))
    assert (d.desired, d.reason) == (13, Reason.UP_TO_LOAD)
    d, _ = decide(cfg, PolicyState(), Observation(8, 250.0, rate_per_s=250.0), at(T))
    assert d.reason is Reason.ABOVE_BAND
    # the rate's catch-up within UP_COOLDOWN sizes on the learned floor only (measured:
    # docs/policy-history.md): 250 / 10
    floor.last_up, floor.above_since = T - 20, T - 25
    d, _ = decide(cfg, floor, Observation(8, 9000.0, rate_per_s=250.0), at(T))
    assert (d.desired, d.reason) == (25, Reason.UP_TO_LOAD)
    # a sure estimate is what an instance carries, whatever was carried quietly
    sure = carrying(10.0)
    sure.quiet = 20.0
    d, _ = decide(cfg, sure, Observation(8, 250.0, rate_per_s=250.0), at(T))
    assert d.desired == 26


def test_a_rate_still_rising_within_up_cooldown_gets_the_instances_it_needs():
    """The queue time waits out UP_COOLDOWN (it still shows the wait from before the added
    instances serve); the arrival rate does not: a rate that keeps rising after an upscale gets
    what it alone needs at once, no backlog added, and only when that is more than run."""
    cfg = PolicyConfig(high=100, up_cooldown=60.0, headroom=0.0)
    state = carrying(20.0)
    state.last_up = state.last_change = T - 20  # an upscale 20 s ago, its instances booting
    state.above_since = T - 25
    rising, after = decide(cfg, state, Observation(10, 9000.0, rate_per_s=410.0), at(T))
    assert (rising.action, rising.desired, rising.reason) == (Action.UP, 21, Reason.UP_TO_LOAD)
    assert after.last_up == T - 20  # the cooldown is the first upscale's (below)
    # the rate needs no more than run (booting ones counted): the queue's backlog waits
    held, _ = decide(cfg, state, Observation(10, 9000.0, rate_per_s=190.0), at(T))
    assert (held.action, held.reason) == (Action.HOLD, Reason.UP_COOLDOWN)
    # with only a floor, the same (it errs on the side of more, as any upscale)
    floor = carrying(20.0, sure=False)
    floor.last_up, floor.above_since = T - 20, T - 25
    d, _ = decide(cfg, floor, Observation(10, 9000.0, rate_per_s=410.0), at(T))
    assert (d.action, d.desired) == (Action.UP, 21)


def test_catch_ups_keep_the_cooldown_so_the_backlog_is_sized_one_cooldown_after_the_upscale():
    """A flash crowd on saturated instances: the rate read is what the serving instances get
    through, and it rises with each one that comes to serve, so the rate's catch-up adds one
    instance every few ticks. Those catch-ups do not restart ``UP_COOLDOWN``: one cooldown after
    the first upscale the signal sizes the backlog (tens of seconds of queue), not one cooldown
    after the rate last rose (minutes later, the queue grown further)."""
    cfg = PolicyConfig(high=200, up_cooldown=60.0, headroom=0.0)
    state, cur, t = carrying(20.0), 4, T
    state.above_since, state.last_change = T - 30, T - 60  # (nothing learned from these)
    ups = []
    for i in range(13):  # 65 s; the rate read grows 20 requests/s a tick
        signal, rate = 41_000.0, 80.0 + 20.0 * i
        d, state = decide(cfg, state, Observation(cur, signal, rate_per_s=rate), at(t))
        if d.action is Action.UP:
            ups.append((t - T, d.desired))
        cur = d.desired
        t += 5.0
    assert ups[0][0] == 0.0
    catch_ups = [u for u in ups if 0 < u[0] < 60]
    assert len(catch_ups) >= 3  # the rate, rising, sizes within the cooldown
    # one cooldown after the first upscale: the rate and draining the backlog (41 s of queue at
    # 320 requests/s) within the cooldown, (320 + 320 * 41 / 60) / 20 = 27 instances
    assert ups[-1] == (60.0, 27)


def test_a_queue_time_rising_sizes_for_the_rate_requests_arrive_at():
    """The rate read counts the requests that started in the window. A request starting now
    arrived a queue time ago: with the queue time rising by 0.6 s a second, they start at 0.4
    times the rate they arrived at (first in, first out), and the upscale is sized for that
    rate, not for what the saturated instances get through."""
    cfg = PolicyConfig(high=200, up_cooldown=60.0, headroom=0.0)
    state = carrying(20.0)
    state.above_since, state.last_change = T - 30, T - 60  # (nothing learned from these)
    state.signal_last, state.rate_at, state.rate_last = 2000.0, T - 5, 100.0
    rising, _ = decide(cfg, state, Observation(5, 5000.0, rate_per_s=100.0), at(T))
    # 250 requests/s arrive, and the backlog: (250 + 100 * 5 / 60) / 20 = 12.9
    assert (rising.action, rising.desired, rising.reason) == (Action.UP, 13, Reason.UP_TO_LOAD)
    # the same queue time, not rising (a steady overload): the rate read sizes it
    state.signal_last = 5000.0
    steady, _ = decide(cfg, state, Observation(5, 5000.0, rate_per_s=100.0), at(T))
    assert (steady.action, steady.desired) == (Action.UP, 6)
    # a rise from inside the band is no queue yet: the rate read sizes it
    state.signal_last = 150.0
    first, _ = decide(cfg, state, Observation(5, 5000.0, rate_per_s=100.0), at(T))
    assert (first.action, first.desired) == (Action.UP, 6)
    # within UP_COOLDOWN the rate's catch-up takes the same rate: 250 / 20
    state.signal_last, state.last_up = 2000.0, T - 20
    caught, _ = decide(cfg, state, Observation(5, 5000.0, rate_per_s=100.0), at(T))
    assert (caught.action, caught.desired, caught.reason) == (Action.UP, 13, Reason.UP_TO_LOAD)


def test_the_forecast_waits_out_up_cooldown_like_any_upscale():
    cfg = PolicyConfig(high=100, up_cooldown=60.0)
    state = carrying(20.0)
    state.last_up = T - 30
    d, _ = decide(cfg, state, Observation(5, 100.0, rate_per_s=200.0), at(T))
    assert d.action is Action.HOLD
    d, _ = decide(cfg, state, Observation(5, 100.0, rate_per_s=200.0), at(T + 30))
    assert (d.action, d.desired, d.reason) == (Action.UP, 10, Reason.FORECAST)


@settings(max_examples=300, deadline=None)
@given(
    cur=st.integers(1, 80),
    signal=st.one_of(st.none(), st.floats(0, 1e6)),
    rate=st.one_of(st.none(), st.floats(0, 1e5)),
    status=st.sampled_from(list(Status)),
    per_instance=st.floats(0.5, 500),
    sure=st.booleans(),
    low=st.integers(0, 5),
)
def test_sized_decisions_stay_in_bounds_and_within_the_per_tick_limit(
    cur, signal, rate, status, per_instance, sure, low
):
    cfg = PolicyConfig(low=low, high=100, down_delay=0.0, scale_from_zero=low == 0)
    state = carrying(per_instance, sure)
    state.below_since = T - 1000
    d, _ = decide(cfg, state, Observation(cur, signal, status, rate_per_s=rate), at(T))
    assert low <= d.desired <= 100
    if d.action is Action.UP:
        assert d.desired <= UP_LIMIT * cur
    if signal is None or status not in (Status.OK, Status.SPARSE):
        assert d.action is not Action.DOWN


def test_a_downscale_that_overloaded_before_it_settled_is_not_repeated_at_that_load():
    """Nothing sure learned: 6 instances carry 600 requests/s quietly, one step down to 5
    overloads at once (120 each). Back at 6 and quiet, the next step would be the same one:
    the formation holds (``headroom``) while 5 would carry as much each, for ``TOO_FEW_FOR`` or
    until instances carry that much quietly; a lower rate steps down as before."""
    from autoscaler.policy.ladder import TOO_FEW_FOR

    cfg = PolicyConfig(high=60, down_delay=120.0, headroom=0.0)
    decisions, state, cur = run(cfg, PolicyState(), 6, 25, 10.0, 600.0)
    downs = [(t - T, d.desired, d.reason) for t, d in decisions if d.action is Action.DOWN]
    assert downs == [(120.0, 5, Reason.BELOW_BAND)] and cur == 5
    start = T + 125.0
    decisions, state, cur = run(cfg, state, cur, 2, 400.0, 600.0, start=start)  # overloaded
    assert state.too_few is not None and state.too_few[0] == 120.0
    assert cur > 6  # (the floor errs on the side of more)
    decisions, state, cur = run(cfg, state, cur, 240, 10.0, 600.0, start=start + 10.0)
    assert cur == 6 and Reason.HEADROOM in {d.reason for _, d in decisions}
    # 500 requests/s: 5 carry 100 each, less than the 120 that overloaded them
    decisions, _, cur = run(cfg, state, 6, 30, 10.0, 500.0, start=start + 1210.0)
    assert cur == 5
    # TOO_FEW_FOR later, the step is tried again
    later = state.too_few[1] + TOO_FEW_FOR
    decisions, _, _ = run(cfg, state, 6, 30, 10.0, 600.0, start=later)
    assert [d.desired for _, d in decisions if d.action is Action.DOWN][:1] == [5]
