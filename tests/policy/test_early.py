"""Item 6 of issue 11, the policy's side: where queue time is silent (fast requests, many
slots), the requests in service per instance approaching what one instance serves at once
(learned: where the queue time starts to rise) scale up before the queue time jumps."""

from __future__ import annotations

from autoscaler.model import Action, Instant, Observation, Reason
from autoscaler.policy import BIN_READINGS, PROBE_AFTER, PolicyConfig, PolicyState, decide

T = 10_000.0


def at(t: float) -> Instant:
    return Instant(t, 1_767_225_600.0 + t)


def tick(cfg, state, cur, signal, rate, in_use, t):
    return decide(cfg, state, Observation(cur, signal, rate_per_s=rate, in_use=in_use), at(t))


def saturating_app(cfg: PolicyConfig) -> PolicyState:
    """Readings of an app with 16 slots per instance whose queue time is 0 ms until the slots
    are nearly all busy, then jumps: 4 instances (MIN = MAX while read, so the formation stays
    settled), quiet up to 14 busy each, overloaded at 15."""
    cfg = cfg.replace(low=4, high=4)
    state, t = PolicyState(), T
    for busy_each in (6.0, 10.0, 14.0):
        for _ in range(BIN_READINGS):
            _, state = tick(cfg, state, 4, 1.0, 40.0 * busy_each, 4 * busy_each, t)
            t += 5
    for _ in range(3):
        _, state = tick(cfg, state, 4, 900.0, 40.0 * 15.0, 4 * 15.0, t)
        t += 5
    return state


def test_the_early_signal_learns_where_the_queue_time_starts_to_rise():
    cfg = PolicyConfig(high=40, headroom=0.0)
    state = saturating_app(cfg)
    assert state.slots is not None and 13.0 < state.slots < 15.0
    # the rate alone never reached the top of the band: only a bracket makes it sure
    assert state.capacity is not None


def test_busy_slots_near_the_limit_scale_up_while_the_queue_time_is_still_zero():
    cfg = PolicyConfig(high=40, headroom=0.0)
    state = saturating_app(cfg)
    state.capacity, state.sure = None, False  # what the rate says aside: the early signal only
    t = T + 10_000
    decision, _ = tick(cfg, state, 4, 0.0, 520.0, 4 * 13.0, t)  # 13 busy each: below the limit
    assert decision.action is Action.HOLD
    decision, _ = tick(cfg, state, 4, 0.0, 600.0, 4 * 15.0, t)  # 15 each: above it, queue 0 ms
    assert (decision.action, decision.reason) == (Action.UP, Reason.EARLY)
    assert decision.desired == 5  # 60 busy at about 14 each


def test_the_app_getting_slower_shows_in_the_busy_slots_first():
    """The same arrival rate with requests taking longer: more slots busy per instance, before
    any queue forms."""
    cfg = PolicyConfig(high=40, headroom=0.0)
    state = saturating_app(cfg)
    t = T + 10_000
    decision, _ = tick(cfg, state, 4, 0.0, 400.0, 4 * 10.0, t)
    assert decision.action is Action.HOLD
    decision, _ = tick(cfg, state, 4, 0.0, 400.0, 4 * 20.0, t)  # twice as slow
    assert (decision.action, decision.reason, decision.desired) == (Action.UP, Reason.EARLY, 6)


def test_without_in_use_or_before_it_is_learned_nothing_changes():
    cfg = PolicyConfig(high=40, headroom=0.0)
    decision, _ = tick(cfg, PolicyState(), 4, 0.0, 600.0, 60.0, T)
    assert decision.action is Action.HOLD
    state = saturating_app(cfg)
    state.capacity, state.sure = None, False
    decision, _ = tick(cfg, state, 4, 0.0, 600.0, None, T + 10_000)
    assert decision.action is Action.HOLD


def test_a_downscale_never_goes_below_what_the_early_signal_keeps():
    """Both estimates agree on a downscale: what the requests in service need holds it, even
    when the rate says fewer (no scaling down only to scale up again on the next tick)."""
    cfg = PolicyConfig(high=40, headroom=0.0, down_delay=60.0)
    state = saturating_app(cfg)
    state.capacity, state.sure = 200.0, False  # a floor: 300 requests/s would need 2
    cur, t = 8, T + 10_000
    for _ in range(40):  # quiet, 300 requests/s with 42 in service: about 3 instances
        decision, state = tick(cfg, state, cur, 5.0, 300.0, 42.0, t)
        assert decision.reason is not Reason.EARLY
        cur = decision.desired
        t += 5
    assert cur == 3


def quiet_until_probe(cfg, state, in_use_each: float):
    """5 instances quiet (queue 0 ms) at 650 requests/s, which 4 would each carry above what
    one is learned to carry: past ``PROBE_AFTER``, one fewer is due to be tried. Returns the
    first decision that is not a hold, or the last one."""
    t = T + 10_000
    decision = None
    while t < T + 10_000 + PROBE_AFTER + 60:
        decision, state = tick(cfg, state, 5, 0.0, 650.0, 5 * in_use_each, t)
        t += 5
        if decision.action is not Action.HOLD:
            break
    assert decision is not None
    return decision


def test_no_probe_while_the_requests_in_service_need_every_instance():
    """A probe to one fewer that the early signal would undo on the next tick (the requests in
    service need the instances there are) teaches nothing and overloads the rest while the
    instance it brings back boots."""
    cfg = PolicyConfig(high=40, headroom=0.0, down_delay=60.0)
    state = saturating_app(cfg)
    assert state.sure and state.capacity is not None and 4 * state.capacity < 650.0
    decision = quiet_until_probe(cfg, state, 12.0)  # 60 in service: more than 4 serve at once
    assert (decision.action, decision.reason) == (Action.HOLD, Reason.HEADROOM)
    decision = quiet_until_probe(cfg, saturating_app(cfg), 10.0)  # 50: 4 serve them
    assert (decision.action, decision.desired, decision.reason) == (Action.DOWN, 4, Reason.PROBE)
