"""One row per situation: settings, history, observation, time -> action, desired, reason."""

from __future__ import annotations

import dataclasses
from zoneinfo import ZoneInfo

import pytest

from autoscaler.model import Action, Decision, Instant, Observation, Reason, Status
from autoscaler.policy import PolicyConfig, PolicyState, auto_step, decide, initial_state
from autoscaler.policy.capacity import top_of_band
from autoscaler.schedule import parse_schedule

T = 10_000.0  # monotonic "now" of every row
WALL = 1_767_600_000.0  # 2026-01-05 08:00:00 UTC, a Monday
UP, DOWN, HOLD = Action.UP, Action.DOWN, Action.HOLD
OK, SPARSE = Status.OK, Status.SPARSE

WEB = {"low": 1, "high": 10, "up_ms": 200.0, "down_ms": 50.0, "down_delay": 300.0}
FIXED = {**WEB, "up_step": 2}
WORKER = {"low": 0, "high": 5, "up_ms": 10_000.0, "down_ms": 2_000.0, "down_delay": 300.0}
WORKER["scale_from_zero"] = True
OFFICE = parse_schedule("mon-fri 08:00-18:00 min=4; sat,sun max=3", ZoneInfo("UTC"))


def state(known=None, above=None, below=None, last_up=None, last_change=None):
    return PolicyState(known, above, below, last_up, last_change)


ROWS = [
    # id, config, state, observation, expected (action, desired, reason)
    ("inside the band holds", WEB, state(3), Observation(3, 100.0), (HOLD, 3, Reason.IN_BAND)),
    (
        "above the band scales up in proportion (auto)",
        WEB,
        state(3),
        Observation(3, 400.0),
        (UP, 6, Reason.ABOVE_BAND),
    ),
    (
        "auto step adds at least one",
        WEB,
        state(3),
        Observation(3, 201.0),
        (UP, 4, Reason.ABOVE_BAND),
    ),
    (
        "auto step at most doubles",
        WEB,
        state(3),
        Observation(3, 5000.0),
        (UP, 6, Reason.ABOVE_BAND),
    ),
    ("fixed UP_STEP", FIXED, state(3), Observation(3, 5000.0), (UP, 5, Reason.ABOVE_BAND)),
    (
        "upscale is capped by MAX",
        WEB,
        state(8),
        Observation(8, 5000.0),
        (UP, 10, Reason.ABOVE_BAND),
    ),
    (
        "instances that never serve stop further upscales",
        WEB,
        PolicyState(4, T - 700, None, T - 600, T - 600, short_since=T - 600),
        Observation(4, 5000.0, ready=2),
        (HOLD, 4, Reason.NOT_READY),
    ),
    (
        "instances still within the provision timeout do not block",
        WEB,
        PolicyState(4, T - 700, None, T - 599, T - 599, short_since=T - 599),
        Observation(4, 5000.0, ready=2),
        (UP, 8, Reason.ABOVE_BAND),
    ),
    (
        "all instances serving: upscale as usual",
        WEB,
        PolicyState(4, T - 700, None, T - 600, T - 600, short_since=T - 600),
        Observation(4, 5000.0, ready=4),
        (UP, 8, Reason.ABOVE_BAND),
    ),
    ("at MAX holds", WEB, state(10), Observation(10, 5000.0), (HOLD, 10, Reason.AT_MAX)),
    (
        "sparse signal scales up one at a time",
        WEB,
        state(3),
        Observation(3, 5000.0, SPARSE),
        (UP, 4, Reason.ABOVE_BAND),
    ),
    (
        "up cooldown blocks a second upscale",
        WEB,
        state(3, above=T - 30, last_up=T - 30),
        Observation(3, 400.0),
        (HOLD, 3, Reason.UP_COOLDOWN),
    ),
    (
        "after the cooldown a second upscale",
        WEB,
        state(3, above=T - 90, last_up=T - 61),
        Observation(3, 400.0),
        (UP, 6, Reason.ABOVE_BAND),
    ),
    (
        "up sensitivity waits",
        {**WEB, "up_sensitivity": 30.0},
        state(3, above=T - 10),
        Observation(3, 400.0),
        (HOLD, 3, Reason.UP_SENSITIVITY),
    ),
    (
        "up sensitivity met",
        {**WEB, "up_sensitivity": 30.0},
        state(3, above=T - 30),
        Observation(3, 400.0),
        (UP, 6, Reason.ABOVE_BAND),
    ),
    (
        "up sensitivity starts on the first high tick",
        {**WEB, "up_sensitivity": 30.0},
        state(3),
        Observation(3, 400.0),
        (HOLD, 3, Reason.UP_SENSITIVITY),
    ),
    (
        "a recent downscale does not block an upscale",
        WEB,
        state(3, last_change=T - 5),
        Observation(3, 400.0),
        (UP, 6, Reason.ABOVE_BAND),
    ),
    (
        "below the band for DOWN_DELAY scales down",
        WEB,
        state(3, below=T - 300),
        Observation(3, 10.0),
        (DOWN, 2, Reason.BELOW_BAND),
    ),
    (
        "below the band, not yet for DOWN_DELAY",
        WEB,
        state(3, below=T - 299),
        Observation(3, 10.0),
        (HOLD, 3, Reason.DOWN_DELAY),
    ),
    (
        "the first low tick starts the down delay",
        WEB,
        state(3),
        Observation(3, 10.0),
        (HOLD, 3, Reason.DOWN_DELAY),
    ),
    (
        "DOWN_DELAY since the last change",
        WEB,
        state(3, below=T - 900, last_change=T - 100),
        Observation(3, 10.0),
        (HOLD, 3, Reason.DOWN_DELAY),
    ),
    (
        "DOWN_STEP",
        {**WEB, "down_step": 2},
        state(5, below=T - 400),
        Observation(5, 10.0),
        (DOWN, 3, Reason.BELOW_BAND),
    ),
    (
        "down step stops at MIN",
        {**WEB, "down_step": 5},
        state(3, below=T - 400),
        Observation(3, 10.0),
        (DOWN, 1, Reason.BELOW_BAND),
    ),
    ("at MIN holds", WEB, state(1, below=T - 400), Observation(1, 10.0), (HOLD, 1, Reason.AT_MIN)),
    (
        "missing signal holds",
        WEB,
        state(3, below=T - 900),
        Observation(3, None, Status.MISSING),
        (HOLD, 3, Reason.SIGNAL_MISSING),
    ),
    (
        "stale signal holds even when low",
        WEB,
        state(3, below=T - 900),
        Observation(3, 0.0, Status.STALE),
        (HOLD, 3, Reason.SIGNAL_STALE),
    ),
    (
        "failed source holds",
        WEB,
        state(3, below=T - 900),
        Observation(3, None, Status.FAILED),
        (HOLD, 3, Reason.SIGNAL_FAILED),
    ),
    (
        "failed source does not scale up either",
        WEB,
        state(3),
        Observation(3, None, Status.FAILED),
        (HOLD, 3, Reason.SIGNAL_FAILED),
    ),
    (
        "sparse low signal may scale down",
        WEB,
        state(3, below=T - 300),
        Observation(3, 10.0, SPARSE),
        (DOWN, 2, Reason.BELOW_BAND),
    ),
    (
        "below MIN is raised to MIN",
        {**WEB, "low": 2},
        state(1),
        Observation(1, 100.0),
        (UP, 2, Reason.RAISED_TO_MIN),
    ),
    (
        "below MIN is raised even without signal",
        {**WEB, "low": 2},
        state(1),
        Observation(1, None, Status.FAILED),
        (UP, 2, Reason.RAISED_TO_MIN),
    ),
    (
        "above MAX is lowered to MAX",
        WEB,
        state(12),
        Observation(12, 100.0),
        (DOWN, 10, Reason.LOWERED_TO_MAX),
    ),
    (
        "set to 0 by hand with MIN 1: hands off",
        WEB,
        state(3),
        Observation(0, 5000.0),
        (HOLD, 0, Reason.DISABLED_MANUAL_ZERO),
    ),
    (
        "worker at 0 with a due job goes to 1 at once",
        WORKER,
        state(0),
        Observation(0, 50.0, OK, depth=1),
        (UP, 1, Reason.SCALE_FROM_ZERO),
    ),
    (
        "worker at 0 with an empty queue stays",
        WORKER,
        state(0),
        Observation(0, 0.0, OK, depth=0),
        (HOLD, 0, Reason.AT_MIN),
    ),
    (
        "worker at 0 with a known depth but no ages goes to 1",
        WORKER,
        state(0),
        Observation(0, None, Status.MISSING, depth=3),
        (UP, 1, Reason.SCALE_FROM_ZERO),
    ),
    (
        "worker at 0 with unknown signal stays",
        WORKER,
        state(0),
        Observation(0, None, Status.FAILED),
        (HOLD, 0, Reason.SIGNAL_FAILED),
    ),
    (
        "worker to 0 when idle",
        WORKER,
        state(1, below=T - 300),
        Observation(1, 0.0, OK, 0, 0),
        (DOWN, 0, Reason.IDLE),
    ),
    (
        "never to 0 while a job runs",
        WORKER,
        state(1, below=T - 300),
        Observation(1, 0.0, OK, depth=0, busy=1),
        (HOLD, 1, Reason.BUSY),
    ),
    (
        "worker above band scales up",
        WORKER,
        state(2),
        Observation(2, 30_000.0),
        (UP, 4, Reason.ABOVE_BAND),
    ),
    (
        "external change is adopted and restarts the down delay",
        WEB,
        state(3, below=T - 900),
        Observation(5, 10.0),
        (HOLD, 5, Reason.DOWN_DELAY),
    ),
    (
        "schedule raises the floor in office hours",
        {**WEB, "schedule": OFFICE},
        state(2),
        Observation(2, 10.0),
        (UP, 4, Reason.RAISED_TO_MIN),
    ),
]


@pytest.mark.parametrize(
    ("cfg", "st", "obs", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_decision_table(cfg, st, obs, expected):
    decision, _ = decide(PolicyConfig(**cfg), st, obs, Instant(T, WALL))
    assert (decision.action, decision.desired, decision.reason) == expected


def test_schedule_caps_at_weekends():
    cfg = PolicyConfig(**WEB, schedule=OFFICE)
    saturday = WALL + 5 * 86400
    decision, _ = decide(cfg, state(5), Observation(5, 100.0), Instant(T, saturday))
    assert (decision.action, decision.desired, decision.reason) == (DOWN, 3, Reason.LOWERED_TO_MAX)
    assert (decision.low, decision.high) == (1, 3)


def test_schedule_outside_hours_uses_base_bounds():
    cfg = PolicyConfig(**WEB, schedule=OFFICE)
    evening = WALL + 11 * 3600  # Monday 19:00
    decision, _ = decide(cfg, state(2), Observation(2, 100.0), Instant(T, evening))
    assert (decision.action, decision.low, decision.high) == (HOLD, 1, 10)


def test_adoption_is_flagged():
    decision, new = decide(PolicyConfig(**WEB), state(3), Observation(5, 100.0), Instant(T, WALL))
    assert decision.adopted
    assert new.known == 5
    assert new.last_change == T


def test_an_upscale_starts_the_cooldown_and_the_down_delay():
    _, new = decide(PolicyConfig(**WEB), state(3), Observation(3, 400.0), Instant(T, WALL))
    assert (new.known, new.last_up, new.last_change) == (6, T, T)


def test_in_band_restarts_the_below_since_clock():
    _, new = decide(
        PolicyConfig(**WEB), state(3, below=T - 200), Observation(3, 100.0), Instant(T, WALL)
    )
    assert new.below_since is None


def test_missing_signal_forgets_the_below_since_clock():
    _, new = decide(
        PolicyConfig(**WEB),
        state(3, below=T - 200),
        Observation(3, None, Status.MISSING),
        Instant(T, WALL),
    )
    assert new.below_since is None


def test_new_leader_honours_a_recent_change_from_formation_timestamp():
    now = Instant(T, WALL)
    st = initial_state(WALL - 60, now)
    decision, _ = decide(
        PolicyConfig(**WEB),
        PolicyState(None, None, T - 900, None, st.last_change),
        Observation(3, 10.0),
        now,
    )
    assert decision.reason is Reason.DOWN_DELAY


def test_initial_state_ignores_a_future_timestamp():
    assert initial_state(WALL + 60, Instant(T, WALL)) == PolicyState()


@pytest.mark.parametrize(
    ("current", "signal", "step"),
    [(1, 400.0, 1), (4, 300.0, 2), (4, 210.0, 1), (10, 1000.0, 10), (0, 1000.0, 1)],
)
def test_auto_step(current, signal, step):
    assert auto_step(current, signal, 200.0) == step


@pytest.mark.parametrize(
    "kwargs", [{"low": 5, "high": 2}, {"low": 0, "high": 0}, {"up_ms": 50.0, "down_ms": 50.0}]
)
def test_config_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        PolicyConfig(**kwargs)


def test_replace_keeps_every_other_setting_and_validates():
    base = PolicyConfig(**WEB, schedule=OFFICE, provision_timeout=90.0, up_cooldown=30.0)
    changed = base.replace(up_ms=300.0, down_step=2)
    assert (changed.up_ms, changed.down_step) == (300.0, 2)
    derived = ("top_ms", "settle_s")  # constants derived from the settings, derived anew
    kept = [s for s in PolicyConfig.__slots__ if s not in ("up_ms", "down_step", *derived)]
    assert all(getattr(changed, s) == getattr(base, s) for s in kept)
    assert (changed.top_ms, base.top_ms) == (top_of_band(50.0, 300.0), top_of_band(50.0, 200.0))
    with pytest.raises(ValueError):
        base.replace(down_ms=400.0)


def test_the_decision_has_every_field_set_as_its_constructor_sets_them():
    cfg = PolicyConfig(**WEB)
    obs = Observation(4, 20.0, Status.OK, rate_per_s=50.0, ready=3)
    d, _ = decide(cfg, PolicyState(known=3, boot=30.0), obs, Instant(100.0, 1.7e9))
    values = {f.name: getattr(d, f.name) for f in dataclasses.fields(Decision)}
    assert d == Decision(**values)
    assert values == {
        "process": "web",
        "action": Action.HOLD,
        "current": 4,
        "desired": 4,
        "reason": Reason.DOWN_DELAY,
        "signal_ms": 20.0,
        "status": Status.OK,
        "low": 1,
        "high": 10,
        "adopted": True,
        "boot_s": 30.0,
    }
