"""The job process's steps (``autoscaler.policy.jobs``), one row per situation, through
``decide``: settings, history, observation -> action, desired, reason."""

from __future__ import annotations

import pytest

from autoscaler.model import Action, Instant, Observation, Reason, Status
from autoscaler.policy import PolicyConfig, PolicyState, decide
from autoscaler.policy.jobs import learn_slots, need

T = 10_000.0
WALL = 1_767_600_000.0
UP, DOWN, HOLD = Action.UP, Action.DOWN, Action.HOLD
OK = Status.OK
WORKER = PolicyConfig(
    "worker",
    low=0,
    high=50,
    up_ms=10_000.0,
    down_ms=2_000.0,
    up_cooldown=60.0,
    down_delay=300.0,
    scale_from_zero=True,
)


def state(
    known: int,
    *,
    below: float | None = None,
    last_up: float | None = None,
    last_change: float | None = None,
    slots: float | None = None,
    window: tuple[tuple[float, int, bool], ...] = (),
) -> PolicyState:
    return PolicyState(known, None, below, last_up, last_change, slots=slots, window=window)


def jobs(current: int, age_s: float, depth: int | None, busy: int | None) -> Observation:
    return Observation(current, age_s * 1000.0, OK, depth=depth, busy=busy)


LONG_AGO = T - 10_000.0
ROWS = [
    # what the jobs need caps the overload's doubling
    (
        "drains the backlog: the overload's doubling when the jobs need more",
        state(2, slots=5.0),
        jobs(2, 30.0, depth=40, busy=10),
        (UP, 4, Reason.ABOVE_BAND),
    ),
    (
        "no more than every due and running job needs",
        state(4, slots=5.0),
        jobs(4, 60.0, depth=3, busy=20),
        (UP, 5, Reason.UP_TO_JOBS),
    ),
    (
        "one more when the instances there could run every job already",
        state(4, slots=5.0),
        jobs(4, 60.0, depth=1, busy=10),
        (UP, 5, Reason.UP_TO_JOBS),
    ),
    (
        "without the slots, the overload alone sizes it",
        state(4),
        jobs(4, 60.0, depth=1, busy=None),
        (UP, 8, Reason.ABOVE_BAND),
    ),
    (
        "no upscale while the last one boots (UP_COOLDOWN)",
        state(4, slots=5.0, last_up=T - 30, last_change=T - 30),
        jobs(4, 60.0, depth=100, busy=10),
        (HOLD, 4, Reason.UP_COOLDOWN),
    ),
    (
        "no downscale while a job runs",
        state(6, below=LONG_AGO, slots=5.0),
        jobs(6, 0.0, depth=0, busy=1),
        (HOLD, 6, Reason.BUSY),
    ),
    (
        "down to what the jobs of DOWN_DELAY needed once none runs",
        state(6, below=LONG_AGO, slots=5.0, window=((T - 200, 3, True), (T - 30, 1, True))),
        jobs(6, 0.0, depth=0, busy=0),
        (DOWN, 3, Reason.DOWN_TO_JOBS),
    ),
    (
        "not to 0 while a job was due or running within UP_COOLDOWN",
        state(1, below=LONG_AGO, window=((T - 30, 1, False),)),
        jobs(1, 0.0, depth=0, busy=0),
        (HOLD, 1, Reason.HEADROOM),
    ),
    (
        "to 0 once nothing was due or running for UP_COOLDOWN (the boot time)",
        state(3, below=LONG_AGO, slots=5.0, window=((T - 61, 2, True),)),
        jobs(3, 0.0, depth=0, busy=0),
        (DOWN, 0, Reason.IDLE),
    ),
    (
        "below the band not yet for DOWN_DELAY nor idle for UP_COOLDOWN",
        state(3, below=T - 40),
        jobs(3, 0.0, depth=0, busy=0),
        (HOLD, 3, Reason.DOWN_DELAY),
    ),
    (
        "running jobs not reported: DOWN_STEP at a time",
        state(5, below=LONG_AGO, window=((T - 30, 1, False),)),
        jobs(5, 0.0, depth=0, busy=None),
        (DOWN, 4, Reason.BELOW_BAND),
    ),
    (
        "not to 0 within UP_COOLDOWN of the last change",
        state(1, below=LONG_AGO, last_change=T - 30),
        jobs(1, 0.0, depth=0, busy=0),
        (HOLD, 1, Reason.DOWN_DELAY),
    ),
    (
        "idle for UP_COOLDOWN: straight to MIN, whatever DOWN_DELAY",
        state(7, below=T - 70, last_change=T - 70, slots=5.0),
        jobs(7, 0.0, depth=0, busy=0),
        (DOWN, 0, Reason.IDLE),
    ),
    (
        "at 0 a due job starts one at once",
        state(0),
        jobs(0, 0.5, depth=1, busy=0),
        (UP, 1, Reason.SCALE_FROM_ZERO),
    ),
    (
        "in the band holds",
        state(3, slots=5.0),
        jobs(3, 5.0, depth=2, busy=15),
        (HOLD, 3, Reason.IN_BAND),
    ),
    (
        "at MAX holds",
        state(50, slots=1.0),
        jobs(50, 60.0, depth=500, busy=50),
        (HOLD, 50, Reason.AT_MAX),
    ),
]


@pytest.mark.parametrize(("st", "obs", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_job_steps(st: PolicyState, obs: Observation, expected: tuple[Action, int, Reason]) -> None:
    decision, _ = decide(WORKER, st, obs, Instant(T, WALL))
    assert (decision.action, decision.desired, decision.reason) == expected


@pytest.mark.parametrize("status", [Status.MISSING, Status.STALE, Status.FAILED])
@pytest.mark.parametrize("busy", [None, 0])
def test_never_down_on_a_missing_signal(status: Status, busy: int | None) -> None:
    st = state(4, below=LONG_AGO, slots=5.0)
    obs = Observation(4, None, status, depth=0, busy=busy)
    decision, new = decide(WORKER, st, obs, Instant(T, WALL))
    assert decision.action is HOLD and decision.desired == 4
    assert decision.reason.value == f"signal_{status.value}"
    assert new.window == st.window  # an untrusted tick says nothing about what the jobs need


def test_the_slots_are_read_off_the_busy_jobs_while_jobs_wait() -> None:
    # 2 instances, 10 busy, jobs waiting: each runs at least 5 at once
    _, new = decide(WORKER, state(2), jobs(2, 5.0, depth=3, busy=10), Instant(T, WALL))
    assert new.slots == 5.0
    # the highest reading is kept; none while nothing waits or right after a change
    assert learn_slots(WORKER, new, jobs(2, 5.0, depth=3, busy=6), T) == 5.0
    assert learn_slots(WORKER, new, jobs(2, 0.0, depth=0, busy=14), T) == 5.0
    changed = state(2, slots=5.0, last_change=T - 10)
    assert learn_slots(WORKER, changed, jobs(2, 5.0, depth=3, busy=14), T) == 5.0
    # the platform's ready count, where given: booting instances run nothing yet
    ready = Observation(4, 5000.0, OK, depth=3, busy=12, ready=2)
    assert learn_slots(WORKER, state(4), ready, T) == 6.0


def test_need_is_unknown_without_slots_depth_or_busy() -> None:
    assert need(jobs(1, 0.0, depth=7, busy=3), 5.0) == 2
    assert need(jobs(1, 0.0, depth=0, busy=0), 5.0) == 0
    assert need(jobs(1, 0.0, depth=None, busy=3), 5.0) is None
    assert need(jobs(1, 0.0, depth=7, busy=None), 5.0) is None
    assert need(jobs(1, 0.0, depth=7, busy=3), None) is None


def test_idle_to_min_after_the_shorter_of_up_cooldown_and_down_delay() -> None:
    # a 10-minute UP_COOLDOWN (a long boot) with the 5-minute DOWN_DELAY: the window of the
    # down step holds no job after 5 minutes, and that is when the worker goes to 0
    cfg = WORKER.replace(up_cooldown=600.0)
    last_job = ((T - 200, 2, True),)
    held, _ = decide(cfg, state(2, below=LONG_AGO, window=last_job), jobs(2, 0.0, 0, 0), at())
    assert (held.action, held.reason) == (HOLD, Reason.HEADROOM)
    old_job = ((T - 301, 2, True),)
    down, _ = decide(cfg, state(2, below=LONG_AGO, window=old_job), jobs(2, 0.0, 0, 0), at())
    assert (down.action, down.desired, down.reason) == (DOWN, 0, Reason.IDLE)


def at() -> Instant:
    return Instant(T, WALL)


HOUR = 3600.0
#: 3,000 slot-seconds a burst: at 5 slots per instance drained within UP_COOLDOWN (60 s) by 10
WORK = 3000.0


def hourly(last: float, *, jitter: float = 0.0, work: float = WORK) -> PolicyState:
    """A worker whose last four bursts came an hour apart, the last at ``last``."""
    bursts = tuple(
        (last - k * HOUR + (jitter if k == 2 else 0.0), 600, work, False) for k in (3, 2, 1, 0)
    )
    st = PolicyState(None, None, LONG_AGO, None, None, slots=5.0)
    st.bursts = bursts
    return st


def idle_jobs(current: int) -> Observation:
    return jobs(current, 0.0, depth=0, busy=0)


@pytest.mark.parametrize(
    ("st", "current", "expected"),
    [
        # due at T + 50: within a boot time (60 s) of it, up to what drains it within a boot
        (hourly(T + 50 - HOUR), 2, (UP, 10, Reason.RECURRING)),
        # the platform's per-tick limit still applies from 0
        (hourly(T + 50 - HOUR), 0, (UP, 1, Reason.RECURRING)),
        # held (not idle) until the slack after it is due, and while the last one drains
        (hourly(T - 20 - HOUR), 12, (HOLD, 12, Reason.RECURRING)),
        (hourly(T - 40), 10, (HOLD, 10, Reason.RECURRING)),
        # earlier than a boot time ahead of it: the idle worker goes to 0
        (hourly(T + 200 - HOUR), 10, (DOWN, 0, Reason.IDLE)),
        # intervals that are not equal are no schedule
        (hourly(T + 50 - HOUR, jitter=600.0), 2, (DOWN, 0, Reason.IDLE)),
        # within the spread of the intervals: started that much earlier
        (hourly(T + 80 - HOUR, jitter=20.0), 2, (UP, 10, Reason.RECURRING)),
        # twice the work, twice the instances; more than MAX: MAX
        (hourly(T + 50 - HOUR, work=2 * WORK), 2, (UP, 20, Reason.RECURRING)),
        (hourly(T + 50 - HOUR, work=100 * WORK), 10, (UP, 50, Reason.RECURRING)),
    ],
)
def test_recurring_bursts(
    st: PolicyState, current: int, expected: tuple[Action, int, Reason]
) -> None:
    st.known = current
    decision, _ = decide(WORKER, st, idle_jobs(current), Instant(T, WALL))
    assert (decision.action, decision.desired, decision.reason) == expected


def test_a_burst_is_remembered_with_the_work_it_ran() -> None:
    cfg = WORKER
    st = PolicyState(1, None, None, None, None, slots=5.0, window=((T - 5, 1, True),))
    # the jobs' need more than doubles the most of DOWN_DELAY in one tick: a burst
    _, st = decide(cfg, st, jobs(1, 3.0, depth=600, busy=5), Instant(T, WALL))
    assert st.bursts == ((T, 121, 0.0, True),)
    # while its jobs are due, the busy slots' seconds are its work
    _, st = decide(cfg, st, jobs(10, 8.0, depth=400, busy=50), Instant(T + 5, WALL + 5))
    assert st.bursts == ((T, 121, 250.0, True),)
    # none due any more: closed, later busy jobs not counted
    _, st = decide(cfg, st, jobs(10, 0.0, depth=0, busy=20), Instant(T + 10, WALL + 10))
    assert st.bursts == ((T, 121, 350.0, False),)
    _, st = decide(cfg, st, jobs(10, 0.0, depth=0, busy=20), Instant(T + 15, WALL + 15))
    assert st.bursts == ((T, 121, 350.0, False),)
    # a need that does not double the most of DOWN_DELAY (121) is no burst
    _, st = decide(cfg, st, jobs(10, 0.0, depth=200, busy=20), Instant(T + 20, WALL + 20))
    assert len(st.bursts) == 1


def test_bursts_closer_than_recur_min_are_no_schedule() -> None:
    from autoscaler.policy.jobs import RECUR_MIN, recurring

    st = hourly(T)
    st.bursts = tuple((T - k * (RECUR_MIN - 10), 600, WORK, False) for k in (3, 2, 1, 0))
    assert recurring(st) is None
    st.bursts = tuple((T - k * (RECUR_MIN + 10), 600, WORK, False) for k in (3, 2, 1, 0))
    assert recurring(st) is not None


def test_smaller_bursts_between_do_not_hide_the_schedule() -> None:
    from autoscaler.policy.jobs import recurring

    st = hourly(T)
    noise = tuple((T - k * HOUR + 700.0, 3, 10.0, False) for k in (3, 2, 1))
    st.bursts = tuple(sorted(st.bursts + noise))
    assert recurring(st) == (T, HOUR, 0.0, 72.0, WORK)
    # but bursts of a like size at other times do
    st.bursts = tuple(sorted((*st.bursts, (T - 1000.0, 500, WORK, False))))
    assert recurring(st) is None


def test_no_upscale_while_the_due_jobs_fall_fast_enough() -> None:
    # an instance that came up after a cold start: the jobs queued during its boot are old,
    # but the due and running jobs fell from 25 to 17 in 5 s (short jobs end faster than jobs
    # come): the 12 due are gone in 7.5 s, before an added one would serve (the 60 s boot);
    # rising or falling too slowly, up as before
    def after(
        before: int, depth: int, *, ready: int | None = 1, then: int | None = 1, cur: int = 1
    ) -> tuple[Action, int, Reason]:
        st = state(cur, slots=5.0, last_up=T - 70, last_change=T - 70)
        st.dues = (T - 5, before, then, 0.0, False)
        obs = Observation(cur, 40_000.0, OK, depth=depth, busy=5, ready=ready)
        d, new = decide(WORKER, st, obs, at())
        assert new.dues is not None and new.dues[:3] == (T, depth + 5, ready)
        return d.action, d.desired, d.reason

    assert after(25, 12) == (HOLD, 1, Reason.DRAINING)
    assert after(12, 20)[0] is UP
    assert after(19, 13)[0] is UP  # 0.2 jobs/s: 65 s to clear them, longer than a boot
    # the first tick an instance serves after a cold start waits for the next reading (the
    # jobs it took moved from due to running: no pace) ...
    assert after(17, 12, then=0) == (HOLD, 1, Reason.DRAINING)
    # ... and so does the first tick an upscale's instances serve: the pace read since the last
    # reading was that of fewer instances
    assert after(17, 12, ready=2, cur=3) == (HOLD, 3, Reason.DRAINING)
    assert after(17, 12, ready=3, then=2, cur=3) == (HOLD, 3, Reason.DRAINING)
    # as many serving as at the last reading, or fewer, or not said: the pace read is theirs
    assert after(17, 12, ready=2, then=2, cur=3)[0] is UP
    assert after(17, 12, ready=1, then=2, cur=3)[0] is UP
    assert after(17, 12, ready=None, then=None, cur=3)[0] is UP
    # no earlier reading: nothing known of the pace
    d, _ = decide(WORKER, state(1, slots=5.0), jobs(1, 40.0, depth=12, busy=5), at())
    assert d.action is UP


def test_instances_unneeded_for_a_boot_go_where_a_boot_is_inside_the_band() -> None:
    # a 5 s boot (UP_COOLDOWN), within the 10 s UP_THRESHOLD, and the 300 s DOWN_DELAY: below
    # the band and unchanged for 100 s, the jobs of the last boot time needed 2 of the 6
    quick = WORKER.replace(up_cooldown=5.0)
    window = ((T - 200, 4, True), (T - 30, 3, True), (T - 3, 2, True))

    def decision(
        cfg: PolicyConfig, *, busy: int | None = 0, last: float = T - 100
    ) -> tuple[Action, int, Reason]:
        st = state(6, below=T - 100, last_change=last, slots=5.0, window=window)
        d, _ = decide(cfg, st, jobs(6, 0.0, depth=0, busy=busy), at())
        return d.action, d.desired, d.reason

    assert decision(quick) == (DOWN, 2, Reason.IDLE_INSTANCES)
    # a job running (the platform chooses which instance stops), or not known to be none
    assert decision(quick, busy=1) == (HOLD, 6, Reason.DOWN_DELAY)
    assert decision(quick, busy=None) == (HOLD, 6, Reason.DOWN_DELAY)
    # changed within the boot time: its instances may still boot
    assert decision(quick, last=T - 3) == (HOLD, 6, Reason.DOWN_DELAY)
    # a boot longer than UP_THRESHOLD (60 s): one started again would let the wait leave the
    # band, so DOWN_DELAY is waited out as before
    assert decision(WORKER) == (HOLD, 6, Reason.DOWN_DELAY)


def ended(current: int, finished: int | None) -> Observation:
    """A reading with nothing due or running, and ``finished`` jobs ended since the last."""
    obs = jobs(current, 0.0, depth=0, busy=0)
    obs.finished = finished
    return obs


def test_jobs_that_end_between_readings_keep_one_instance_where_a_boot_exceeds_the_band() -> None:
    # UP_COOLDOWN (the boot) 60 s > UP_THRESHOLD 10 s: a cold start would queue the next job
    # about 60 s; the jobs ended 30 s ago (within the boot), so the worker is not idle
    idle = state(1, below=LONG_AGO, slots=5.0, window=((T - 61, 0, True),))
    d, new = decide(WORKER, idle, ended(1, 2), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (HOLD, 1, Reason.JOBS_ENDED)
    assert new.ended == T
    # more instances than one: down to one, as the idle rule would go to MIN
    four = state(4, below=LONG_AGO, slots=5.0, window=((T - 61, 0, True),))
    d, _ = decide(WORKER, four, ended(4, 2), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (DOWN, 1, Reason.JOBS_ENDED)
    # none ended for a boot time: idle, to 0
    later = Instant(T + 60, WALL + 60)
    d, _ = decide(WORKER, new, ended(1, 0), later)
    assert (d.action, d.desired, d.reason) == (DOWN, 0, Reason.IDLE)
    # within it, a reading that shows none ended keeps it (the last jobs ended < a boot ago)
    d, _ = decide(WORKER, new, ended(1, 0), Instant(T + 30, WALL + 30))
    assert (d.action, d.desired, d.reason) == (HOLD, 1, Reason.JOBS_ENDED)


@pytest.mark.parametrize("finished", [None, 0])
def test_unknown_or_no_ended_jobs_leave_the_idle_rule_as_it_was(finished: int | None) -> None:
    idle = state(1, below=LONG_AGO, slots=5.0, window=((T - 61, 0, True),))
    d, new = decide(WORKER, idle, ended(1, finished), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (DOWN, 0, Reason.IDLE)
    assert new.ended is None


def test_ended_jobs_do_not_keep_a_worker_whose_boot_is_inside_the_band() -> None:
    # a 5 s boot: a cold start keeps the next job's wait below UP_THRESHOLD (10 s)
    quick = WORKER.replace(up_cooldown=5.0)
    idle = state(1, below=LONG_AGO, slots=5.0, window=((T - 61, 0, True),))
    d, _ = decide(quick, idle, ended(1, 3), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (DOWN, 0, Reason.IDLE)
    # a MIN above 0 is kept by the bounds anyway
    three = state(3, below=LONG_AGO, slots=5.0, window=((T - 61, 0, True),))
    d, _ = decide(WORKER.replace(low=1), three, ended(3, 3), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (DOWN, 1, Reason.IDLE)


def test_with_up_cooldown_auto_the_boot_to_beat_is_the_learned_one_or_the_default() -> None:
    auto = WORKER.replace(up_cooldown=None)
    idle = PolicyState(1, None, LONG_AGO, slots=5.0, window=((T - 61, 0, True),))
    # no boot read yet: the default (60 s), as for every role of UP_COOLDOWN: kept
    d, _ = decide(auto, idle, ended(1, 2), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (HOLD, 1, Reason.JOBS_ENDED)
    # an 8 s boot read: a cold start stays inside the band (10 s), to 0 as when idle
    idle.boot = 8.0
    d, _ = decide(auto, idle, ended(1, 2), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (DOWN, 0, Reason.IDLE)


def test_a_scheduled_burst_over_releases_its_instances_without_the_idle_wait() -> None:
    # the hourly burst came at T - 70 (its instances held by ``recurring`` until a boot, 60 s,
    # after it), its jobs are done and nothing is due or running: the next is an hour away and
    # will be started ahead, so 11 of its 12 instances go now, not once idle for a boot (60 s:
    # the window still saw its jobs 10 s ago)
    def after(st: PolicyState) -> tuple[Action, int, Reason]:
        st.known = 12
        st.window = ((T - 10, 12, True),)
        d, _ = decide(WORKER, st, idle_jobs(12), Instant(T, WALL))
        return d.action, d.desired, d.reason

    assert after(hourly(T - 70)) == (DOWN, 1, Reason.BURST_OVER)
    # the last instance is the idle rule's: it waits a boot time from the last job, as ever
    last = hourly(T - 70)
    last.known, last.window = 1, ((T - 10, 12, True),)
    d, _ = decide(WORKER, last, idle_jobs(1), Instant(T, WALL))
    assert (d.action, d.desired) == (HOLD, 1)
    # a MIN above 1 is kept
    floor = hourly(T - 70)
    floor.known, floor.window = 12, ((T - 10, 12, True),)
    d, _ = decide(WORKER.replace(low=3), floor, idle_jobs(12), Instant(T, WALL))
    assert (d.action, d.desired, d.reason) == (DOWN, 3, Reason.BURST_OVER)
    # a job still running: the downscale waits for it, as always
    st = hourly(T - 70)
    st.known, st.window = 12, ((T - 10, 12, True),)
    d, _ = decide(WORKER, st, jobs(12, 0.0, depth=0, busy=1), Instant(T, WALL))
    assert (d.action, d.desired) == (HOLD, 12)
    # no schedule (unequal intervals): a burst like any other, the idle wait kept
    assert after(hourly(T - 70, jitter=600.0))[:2] == (HOLD, 12)
    # a burst seen long ago (past the wait the idle rule would have made): nothing new
    assert after(hourly(T - 1000))[:2] == (HOLD, 12)
