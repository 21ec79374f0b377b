"""The learned boot time: its pure pieces on hand-computed cases, then through ``decide``."""

from __future__ import annotations

import json

import pytest

from autoscaler.model import Action, Instant, Observation, Reason
from autoscaler.policy import PolicyConfig, PolicyState, decide
from autoscaler.policy.boot import (
    BOOT_DEFAULT,
    BOOT_MAX,
    BOOT_MIN,
    BOOT_READINGS,
    cooldown,
    drain,
    estimate,
    idle,
    learned,
    push,
    settle,
    timing,
)
from autoscaler.policy.snapshot import restore, snapshot

# ---- the pure pieces ---------------------------------------------------------------------------


def test_a_boot_is_read_when_as_many_serve_as_run():
    # asked at 100 for 6 (known 6); at 130 four of six serve: still timing
    assert timing(100.0, 6, 6, 4, 130.0) == (100.0, None)
    # at 145 all six serve: read 45 s
    assert timing(100.0, 6, 6, 6, 145.0) == (None, 45.0)
    # more serving than run (one being stopped still reported) counts as caught up
    assert timing(100.0, 6, 6, 7, 150.0) == (None, 50.0)


def test_nothing_timed_reads_nothing():
    assert timing(None, 6, 6, 6, 145.0) == (None, None)


def test_a_scale_that_never_becomes_ready_is_dropped_unread():
    assert timing(100.0, 6, 6, 4, 100.0 + BOOT_MAX) == (100.0, None)
    assert timing(100.0, 6, 6, 4, 100.0 + BOOT_MAX + 5) == (None, None)
    # and if it then serves, that is not a reading either (the timing is gone)
    assert timing(None, 6, 6, 6, 100.0 + BOOT_MAX + 10) == (None, None)


def test_a_formation_someone_else_changed_is_not_timed():
    # the policy set 6; the platform shows 8 (someone else's upscale), all serving
    assert timing(100.0, 6, 8, 8, 145.0) == (None, None)
    # or 4 (someone else's downscale), all serving
    assert timing(100.0, 6, 4, 4, 145.0) == (None, None)
    # a change not applied (dry run, follower: nothing is known) reads nothing
    assert timing(100.0, None, 4, 4, 105.0) == (None, None)


def test_a_platform_that_stops_saying_what_serves_drops_the_timing():
    assert timing(100.0, 6, 6, None, 145.0) == (None, None)


def test_readings_keep_the_most_recent():
    boots: tuple[float, ...] = ()
    for k in range(BOOT_READINGS + 3):
        boots = push(boots, float(10 + k))
    assert boots == tuple(float(10 + k) for k in range(3, BOOT_READINGS + 3))


def test_the_estimate_is_the_highest_then_the_second_highest():
    assert estimate(()) is None
    assert estimate((40.0,)) == 40.0
    assert estimate((40.0, 50.0, 45.0)) == 50.0  # under four readings: the highest
    # noise: one slow boot among four does not set it alone
    assert estimate((40.0, 300.0, 45.0, 42.0)) == 45.0
    # a boot that has become slower counts from its second reading
    assert estimate((40.0, 45.0, 42.0, 120.0, 118.0)) == 118.0


def test_the_estimate_is_bounded():
    assert estimate((1.0,)) == BOOT_MIN
    assert estimate((BOOT_MAX + 100.0,)) == BOOT_MAX


def test_up_cooldown_set_wins_over_what_is_learned():
    st = PolicyState(boot=42.0, boots=(42.0,))
    assert learned(PolicyConfig(up_cooldown=90.0), st) == 90.0
    assert learned(PolicyConfig(up_cooldown=0.0), st) == 0.0
    assert learned(PolicyConfig(), st) == 42.0
    assert learned(PolicyConfig(), PolicyState()) == BOOT_DEFAULT


def test_each_role_takes_its_value():
    web, worker = PolicyConfig(), PolicyConfig("worker", low=0, up_ms=10_000.0, down_ms=2_000.0)
    worker.scale_from_zero = True
    fast, slow = PolicyState(boot=20.0, boots=(20.0,)), PolicyState(boot=120.0, boots=(120.0,))
    # the cooldown (and the drain): the learned boot, for a web process at most the default
    assert [cooldown(web, fast), cooldown(web, slow)] == [20.0, BOOT_DEFAULT]
    assert [drain(web, fast), drain(web, slow)] == [20.0, BOOT_DEFAULT]
    assert [cooldown(worker, fast), cooldown(worker, slow)] == [20.0, 120.0]
    # the settle time: never the boot
    assert [settle(web, fast), settle(worker, slow)] == [BOOT_DEFAULT, BOOT_DEFAULT]
    # a worker's idle time: the boot (rent or buy)
    assert [idle(worker, fast), idle(worker, slow)] == [20.0, 120.0]
    # UP_COOLDOWN set: every role's value
    for role in (cooldown, settle, drain, idle):
        assert role(web.replace(up_cooldown=90.0), slow) == 90.0
        assert role(web.replace(up_cooldown=90.0), fast) == 90.0
    # the settle time plus the window, as the hot path reads it from the settings
    for cfg in (web, worker, web.replace(up_cooldown=90.0, window=60.0)):
        assert cfg.settle_s == settle(cfg, slow) + cfg.window == settle(cfg, fast) + cfg.window


# ---- through decide ----------------------------------------------------------------------------

CFG = PolicyConfig(low=1, high=20, up_ms=200.0, down_ms=50.0, up_step=2)


def tick(
    cfg: PolicyConfig, st: PolicyState, t: float, current: int, ready: int | None, sig: float
) -> tuple[Action, Reason, int, PolicyState]:
    d, new = decide(cfg, st, Observation(current, sig, ready=ready), Instant(t, 1.7e9 + t))
    return d.action, d.reason, d.desired, new


def test_decide_reads_its_own_upscale_and_uses_it_as_the_cooldown():
    st = PolicyState(known=2, last_change=0.0)
    action, _, desired, st = tick(CFG, st, 1000.0, 2, 2, 500.0)
    assert (action, desired, st.boot_at) == (Action.UP, 4, 1000.0)
    _, _, _, st = tick(CFG, st, 1005.0, 4, 2, 500.0)  # booting
    assert st.boot_at == 1000.0 and st.boots == ()
    _, _, _, st = tick(CFG, st, 1025.0, 4, 4, 100.0)  # all four serve after 25 s
    assert (st.boot_at, st.boots, st.boot) == (None, (25.0,), 25.0)
    # still overloaded 26 s after the upscale: the learned 25 s cooldown has passed (60 s
    # would still hold)
    action, reason, _, _ = tick(CFG, st, 1026.0, 4, 4, 500.0)
    assert (action, reason) == (Action.UP, Reason.ABOVE_BAND)
    action, reason, _, _ = tick(CFG.replace(up_cooldown=60.0), st, 1026.0, 4, 4, 500.0)
    assert (action, reason) == (Action.HOLD, Reason.UP_COOLDOWN)


def test_a_downscale_never_reads_a_boot():
    # one of four does not serve; the policy scales down to 3 and then all three serve
    st = PolicyState(known=4, last_change=0.0, below_since=0.0)
    cfg = CFG.replace(down_delay=10.0)
    action, _, desired, st = tick(cfg, st, 1000.0, 4, 3, 10.0)
    assert (action, desired, st.boot_at) == (Action.DOWN, 3, None)
    _, _, _, st = tick(cfg, st, 1005.0, 3, 3, 10.0)
    assert st.boots == () and st.boot is None


def test_a_downscale_while_timing_drops_the_timing():
    st = PolicyState(known=4, last_change=0.0, below_since=0.0, boot_at=990.0)
    cfg = CFG.replace(down_delay=5.0)
    action, _, _, st = tick(cfg, st, 1000.0, 4, 3, 10.0)
    assert action is Action.DOWN and st.boot_at is None
    _, _, _, st = tick(cfg, st, 1005.0, 3, 3, 10.0)
    assert st.boots == ()


def test_an_adopted_quantity_is_not_timed():
    st = PolicyState(known=2, last_change=0.0)
    _, _, _, st = tick(CFG, st, 1000.0, 2, 2, 500.0)  # up to 4, timing
    d, st = decide(CFG, st, Observation(7, 100.0, ready=7), Instant(1030.0, 1.7e9))
    assert d.adopted and st.boot_at is None and st.boots == ()


def test_no_ready_no_timing():
    st = PolicyState(known=2, last_change=0.0)
    action, _, _, st = tick(CFG, st, 1000.0, 2, None, 500.0)
    assert action is Action.UP and st.boot_at is None


def test_the_decision_carries_the_learned_boot():
    st = PolicyState(known=3, last_change=0.0, boot=33.0, boots=(33.0,))
    d, _ = decide(CFG, st, Observation(3, 100.0, ready=3), Instant(1000.0, 1.7e9))
    assert d.boot_s == 33.0


def test_a_worker_idle_for_the_learned_boot_goes_to_zero():
    cfg = PolicyConfig("worker", low=0, high=10, up_ms=10_000.0, down_ms=2_000.0)
    cfg.scale_from_zero = True
    st = PolicyState(known=2, last_change=0.0, boot=20.0, boots=(20.0,))
    t = 1000.0
    while True:
        d, st = decide(cfg, st, Observation(2, 0.0, depth=0, busy=0, ready=2), Instant(t, 0.0))
        if d.action is not Action.HOLD:
            break
        t += 5.0
    # idle from the first tick (1000): to 0 after the learned 20 s, not the default 60 s
    assert (d.action, d.desired, d.reason, t) == (Action.DOWN, 0, Reason.IDLE, 1020.0)


# ---- kept across restarts ----------------------------------------------------------------------


def test_the_readings_survive_a_restart():
    st = PolicyState(boot=45.0, boots=(40.0, 45.0, 44.0))
    data = json.loads(json.dumps(snapshot(st, 100.0)))
    back = restore(PolicyState(), data, 5.0)
    assert (back.boots, back.boot, back.boot_at) == ((40.0, 45.0, 44.0), 45.0, None)


def test_a_version_1_snapshot_restores_without_boots():
    data = snapshot(PolicyState(capacity=20.0, sure=True), 100.0)
    del data["boots"]
    data["version"] = 1
    back = restore(PolicyState(), data, 5.0)
    assert (back.capacity, back.boots, back.boot) == (20.0, (), None)


@pytest.mark.parametrize(
    "boots",
    [
        "45",
        [45.0] * (BOOT_READINGS + 1),
        [-1.0],
        [0.0],
        [float("nan")],
        [BOOT_MAX + 1.0],
        [True],
        None,
    ],
)
def test_invalid_boots_are_ignored(boots):
    data = snapshot(PolicyState(capacity=20.0, sure=True), 100.0)
    data["boots"] = boots
    state = PolicyState()
    assert restore(state, data, 5.0) is state


def test_a_falling_queue_time_after_an_upscale_sizes_no_further_one():
    # sized by the overload alone (no rate): after the upscale's instances serve, the queue
    # time still shows the waits from before them for a window; falling, it is the queue
    # draining, not an overload still to answer
    cfg = CFG.replace(up_step=0)
    st = PolicyState(known=4, last_change=0.0)
    action, _, desired, st = tick(cfg, st, 1000.0, 4, 4, 400.0)
    assert (action, desired) == (Action.UP, 8)
    t = 1000.0
    for ready, sig in [(4, 450.0), (4, 480.0), (8, 470.0), (8, 460.0), (8, 440.0)]:
        t += 5.0  # the four added serve after 15 s (read as the boot: the cooldown)
        action, reason, _, st = tick(cfg, st, t, 8, ready, sig)
        assert (action, reason) == (Action.HOLD, Reason.UP_COOLDOWN)
    assert st.boot == 15.0
    # rising again: an overload the added instances do not meet
    action, reason, desired, _ = tick(cfg, st, t + 5.0, 8, 8, 470.0)
    assert (action, reason, desired) == (Action.UP, Reason.ABOVE_BAND, 16)
    assert st.served_at == 1015.0
    # the drain time (the cooldown, WINDOW at least) after they all serve, the queue time sizes
    # again, falling or not
    action, reason, _, _ = tick(cfg, st, 1015.0 + cfg.window - 5.0, 8, 8, 430.0)
    assert (action, reason) == (Action.HOLD, Reason.UP_COOLDOWN)
    action, reason, _, _ = tick(cfg, st, 1015.0 + cfg.window, 8, 8, 430.0)
    assert (action, reason) == (Action.UP, Reason.ABOVE_BAND)


def test_a_falling_queue_time_while_the_added_instances_boot_sizes_no_upscale():
    # a slow boot: past the (60 s) cooldown and the drain time after it, the queue time still
    # falls while the added instances boot (the load fell): no second upscale on it
    cfg = CFG.replace(up_step=0)
    st = PolicyState(known=4, last_change=0.0)
    _, _, _, st = tick(cfg, st, 1000.0, 4, 4, 400.0)
    action, reason, _, st = tick(cfg, st, 1005.0, 8, 4, 480.0)
    assert (action, reason) == (Action.HOLD, Reason.UP_COOLDOWN)
    action, reason, _, st = tick(cfg, st, 1130.0, 8, 4, 470.0)
    assert (action, reason, st.boot_at) == (Action.HOLD, Reason.UP_COOLDOWN, 1000.0)
    action, reason, desired, _ = tick(cfg, st, 1135.0, 8, 4, 475.0)  # rising: sized on
    assert (action, reason, desired) == (Action.UP, Reason.ABOVE_BAND, 16)
