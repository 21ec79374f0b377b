"""The up and down steps of a job process (a worker scaled on job latency), which ``ladder`` calls.

A job source reports the age of the oldest due job (the signal), the due jobs waiting
(``depth``) and the jobs running (``busy``, where the backend records it); no arrival rate, so
nothing of the web path's capacity model or forecast applies. What applies instead:

- what one instance runs at once (its *slots*) is read off the busy jobs while jobs wait (every
  slot of a serving instance is then taken): the most busy jobs per instance seen, but not
  within ``UP_COOLDOWN`` of a downscale (instances being stopped may still run jobs) (kept in
  ``PolicyState.slots``);
- an upscale never asks for more instances than run every due and running job at once
  (``ceil((depth + busy) / slots)``, at least one more), and none while the last one boots
  (``UP_COOLDOWN``);
- a downscale never happens while a job runs (where ``busy`` is known: the platform chooses which
  instance stops, and a job outliving its grace period is lost), and goes to the most instances
  the due and running jobs needed over ``DOWN_DELAY``; where the boot (``UP_COOLDOWN``) is within
  ``UP_THRESHOLD`` and shorter than ``DOWN_DELAY``, instances the jobs have not needed for a boot
  time go without waiting out ``DOWN_DELAY`` (``unneeded``: the idle rule below, instance by
  instance);
- no upscale while the due and running jobs fall fast enough for the due ones to be gone before
  an added instance would serve, nor on the tick more instances serve than at the last reading
  (after a cold start or an upscale: ``draining``: the wait was queued during a boot or by a
  burst, and is being cleared, at a pace the next reading shows);
- once nothing has been due or running for ``UP_COOLDOWN`` (set to about the boot time; or
  ``DOWN_DELAY`` if shorter, whose window then holds no job), straight to ``MIN`` (0): an idle
  instance kept that long has cost what a cold start costs, so a worker never pays more than
  about twice what it would knowing when the next job comes (the classic rent-or-buy bound);
  shorter gaps keep it warm. Jobs that ended between two readings (``finished``, where the
  source tells) count as work seen for this rule when a cold start would cost a wait: where
  the boot (``UP_COOLDOWN``) is longer than ``UP_THRESHOLD``, the next job after a scale to
  zero waits about a boot, above the band; a worker whose short jobs each start and end
  between readings is then kept at one instance (``jobs_ended``) until none ended for that
  long. Where the boot is shorter, a cold start keeps the wait inside the band, and the
  worker goes to zero as before;
- bursts (the jobs' need more than doubling the most it was over ``DOWN_DELAY``, in one
  tick) are remembered with the slot-seconds their jobs ran until none was due; once the last
  ``BURSTS`` big ones (smaller ones between them are other work) came at equal intervals of
  at least ``RECUR_MIN`` (a cron schedule), the next is expected one interval after the last:
  from a boot time before it until the slack after it, and for a boot time after one came, the
  instances that run the most work one of them brought within a boot time are started ahead
  and kept (``recurring``), as the web path drains a backlog within the boot. Once one is over
  (none of its jobs due, nothing due or running), they go at once but one (``burst_over``),
  without the idle rule's wait of a boot time: the next is an interval away and is started
  ahead again; the last one is the idle rule's, as for any job.

Pure functions; ``docs/policy.md`` says the same in words, each path ends in one ``Reason``.
"""

from __future__ import annotations

import math
from itertools import pairwise

from autoscaler.model import Action, Observation, Reason
from autoscaler.policy import boot, sizing
from autoscaler.policy.config import PolicyConfig
from autoscaler.policy.state import PolicyState, up_held

Step = tuple[Action, int, Reason]
_UP, _DOWN, _HOLD = Action.UP, Action.DOWN, Action.HOLD

#: a schedule is this many bursts at equal intervals (three intervals in a row)
BURSTS = 4
#: the bursts remembered (the most recent), smaller ones in between included
KEPT = 16
#: bursts closer than this (s) are no schedule to start instances ahead of (a worker idle
#: for less than a boot is kept anyway, and random bursts come close together)
RECUR_MIN = 300.0
#: intervals are equal within this share of the interval, at least ``RECUR_SLACK`` (s): the
#: ticks that see a burst and the enqueuing of its jobs jitter it
RECUR_SHARE = 0.02
RECUR_SLACK = 30.0


def learn_slots(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float) -> float | None:
    """What one instance runs at once, with this tick's reading: while jobs wait, every slot of a
    serving instance is taken, so the busy jobs per serving instance (the platform's ``ready``
    where it says, else every instance: booting ones make it read low, never high) is a floor;
    the highest floor read on a formation unchanged for ``UP_COOLDOWN`` is kept (right after a
    change, instances being stopped may still run jobs)."""
    depth, busy, cur = obs.depth, obs.busy, obs.current
    if not depth or not busy or cur <= 0:
        return st.slots
    last = st.last_change
    if last is not None and last != st.last_up and t - last < boot.settle(cfg, st):
        return st.slots  # a downscale (or a change not made here): stopping ones run jobs
    ready = obs.ready
    serving = ready if ready is not None and 0 < ready < cur else cur
    seen = busy / serving
    return seen if st.slots is None or seen > st.slots else st.slots


def need(obs: Observation, slots: float | None) -> int | None:
    """The instances that run every due and running job at once: ``ceil((depth + busy) /
    slots)``; ``None`` when the slots, the depth or the busy jobs are unknown."""
    depth, busy = obs.depth, obs.busy
    if slots is None or depth is None or busy is None:
        return None
    return math.ceil((depth + busy) / slots - 1e-9)


def recommend(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float) -> tuple[int, bool]:
    """This tick's entry of the downscale window (``DOWN_DELAY``; ``st`` is the new state,
    whose slots are learned here): what the due and running jobs need, and whether the slots
    sized it; without the slots, 1 while any job is due or running (the signal counts as a
    due job), else 0. Running jobs a backend does not report count as none."""
    st.slots = learn_slots(cfg, st, obs, t)
    if obs.finished:
        st.ended = t
    depth, busy = obs.depth, obs.busy
    if depth is not None and busy is not None:
        last, jobs_now, ready = st.dues, depth + busy, obs.ready
        fell, rose = 0.0, False
        if last is not None and t > last[0]:
            fell = (last[1] - jobs_now) / (t - last[0])
            rose = ready is not None and last[2] is not None and ready > last[2]
        st.dues = (t, jobs_now, ready, fell, rose)
    jobs = need(obs, st.slots)
    if jobs is not None:
        window, bursts = st.window, st.bursts
        if bursts and bursts[-1][3] and window:  # the last burst drains: its work counted
            at, size, work, _ = bursts[-1]
            work += (obs.busy or 0) * (t - window[-1][0])
            bursts = st.bursts = (*bursts[:-1], (at, size, work, bool(obs.depth)))
        before = window[0][1] if window else 0  # the most needed over DOWN_DELAY
        if jobs > 2 * (before if before > 1 else 1):  # a burst: remembered
            st.bursts = (*bursts, (t, jobs, 0.0, True))[-KEPT:]
        return jobs, True
    work = (obs.depth or 0) > 0 or (obs.busy or 0) > 0 or bool(obs.signal_ms)
    return (1 if work else 0), False


def recurring(st: PolicyState) -> tuple[float, float, float, float, float] | None:
    """The bursts' schedule, when the last ``BURSTS`` big ones (needing at least half what the
    biggest remembered needed: smaller ones between them are other work) came at equal
    intervals of at least ``RECUR_MIN`` (within the slack): ``(the last one's time, the
    interval, how far the intervals strayed from it, the slack, the most slot-seconds one of
    them ran)``; else ``None``."""
    bursts = st.bursts
    if len(bursts) < BURSTS:
        return None
    biggest = max(b[1] for b in bursts)
    big = [b for b in bursts if 2 * b[1] >= biggest][-BURSTS:]
    if len(big) < BURSTS:
        return None
    first, last = big[0][0], big[-1][0]
    interval = (last - first) / (BURSTS - 1)
    if interval < RECUR_MIN:
        return None
    slack = max(RECUR_SHARE * interval, RECUR_SLACK)
    spread = 0.0
    for a, b in pairwise(big):
        off = abs(b[0] - a[0] - interval)
        if off > slack:
            return None
        spread = max(spread, off)
    return last, interval, spread, slack, max(b[2] for b in big)


def ahead(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, high: int) -> Step | None:
    """Bursts on a schedule: from a boot time (plus how far the intervals strayed) before the
    next is expected until the slack after, and for a boot time (``WINDOW`` at least) after the
    last came, the instances that run the most work one of them brought within that boot time
    (as the web path drains a backlog): up to them, or hold them; ``None`` otherwise or
    without the slots."""
    schedule = recurring(st)
    slots = st.slots
    if schedule is None or slots is None:
        return None
    last, interval, spread, slack, work = schedule
    drain = max(boot.drain(cfg, st), cfg.window)
    due = last + interval
    if t > last + drain and not due - boot.learned(cfg, st) - spread <= t <= due + slack:
        return None
    cur = obs.current
    size = min(max(sizing.instances_for(work / drain, slots), 1), high)
    if cur >= size:
        return _HOLD, cur, Reason.RECURRING
    return _UP, min(size, sizing.up_limit(cur, high)), Reason.RECURRING


def up(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, high: int) -> Step:
    """Above the band: around a recurring burst, its instances (``ahead``); else wait out
    ``UP_SENSITIVITY`` and ``UP_COOLDOWN`` (the last upscale's instances boot), then
    ``UP_STEP`` or in proportion to the overload (at most doubling), but never more than every
    due and running job needs (at least one more)."""
    cur = obs.current
    assert obs.signal_ms is not None
    early = ahead(cfg, st, obs, t, high)
    if early is not None:
        return early
    held = up_held(cfg, st, cur, t, high, cooldown=boot.cooldown(cfg, st))
    if held is not None:
        return _HOLD, cur, held
    if draining(cfg, st, obs, t):
        return _HOLD, cur, Reason.DRAINING
    if cfg.up_step:
        desired = cur + cfg.up_step
    else:
        desired = sizing.for_overload(cur, obs.signal_ms, cfg.up_ms)
    reason = Reason.ABOVE_BAND
    jobs = need(obs, st.slots)
    if jobs is not None and jobs < desired:
        desired, reason = (jobs if jobs > cur else cur + 1), Reason.UP_TO_JOBS
    return _UP, min(desired, sizing.up_limit(cur, high)), reason


def draining(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float) -> bool:
    """The wait the signal shows was queued before and the serving instances are clearing it:
    the due and running jobs fell since the last reading, at a pace (jobs ended less jobs come)
    that leaves no due one before an added instance would serve (the learned boot time); or
    more instances serve than at the last reading (where the platform says: the first ones
    after a cold start, or an upscale's): the pace read since then is that of fewer instances,
    and the next reading shows theirs (jobs they took moved from due to running: no pace)."""
    dues, depth = st.dues, obs.depth
    if dues is None or depth is None or dues[0] != t:
        return False
    _, _, _, fell, rose = dues
    return rose or (fell > 0.0 and depth <= fell * boot.learned(cfg, st))


def warm(cfg: PolicyConfig, st: PolicyState, t: float) -> bool:
    """Jobs ended between readings within the idle time (``boot.idle``: none was due or
    running when read, but the worker was not idle), and a cold start would cost a wait above
    the band: the boot (``boot.learned``: ``UP_COOLDOWN`` as set, else the learned boot, else
    ``BOOT_DEFAULT`` until one is read, as for every role of ``UP_COOLDOWN``) is longer than
    ``UP_THRESHOLD``, so the next job after a scale to zero would wait longer than the band
    allows. Where the boot is shorter, a cold start costs no wait above the band and the
    worker goes to zero as when idle."""
    ended = st.ended
    if ended is None:
        return False
    booting = boot.learned(cfg, st)
    return booting * 1000.0 > cfg.up_ms and t - ended < boot.idle(cfg, st)


def burst_over(cfg: PolicyConfig, st: PolicyState, t: float) -> bool:
    """A burst on the schedule (``recurring``) is over: the last one remembered is the
    schedule's last, none of its jobs is due any more, nothing is due or running now, and the
    wait the idle rule would make (``boot.idle`` after the span ``ahead`` holds its instances)
    has not run out. Its instances were started for it, ahead, and the next is an interval
    away and will be started ahead again: the idle rule's wait (a hedge against a job coming
    soon) is not kept for them (``burst_over``: to ``MIN``, at least 1; the idle rule decides
    about the last one, as it would have)."""
    window = st.window
    if not st.bursts or not window or window[-1][1] != 0:
        return False
    schedule = recurring(st)
    if schedule is None:
        return False
    last = schedule[0]
    at, _, _, due = st.bursts[-1]
    drain = max(boot.drain(cfg, st), cfg.window)
    return at == last and not due and t <= last + drain + boot.idle(cfg, st)


def idle_for(st: PolicyState, t: float) -> float:
    """How long nothing has been due or running (as far as the downscale window, the signal
    below the band and the last change tell): the last entry of the window (``DOWN_DELAY``
    long) with a job is when one was last seen; none in it means longer than the window."""
    window = st.window
    if not window or window[-1][1] != 0:
        return 0.0
    since = st.below_since
    if len(window) > 1 and (since is None or window[-2][0] > since):
        since = window[-2][0]
    if st.last_change is not None and (since is None or st.last_change > since):
        since = st.last_change
    return math.inf if since is None else t - since


def unneeded(
    cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, low: int
) -> Step | None:
    """Instances the jobs have not needed for a boot time (``boot.idle``), where that is shorter
    than ``DOWN_DELAY`` and no longer than ``UP_THRESHOLD``: with no job running (``busy``
    known to be 0), below the band and unchanged for that long, down to the most the due and
    running jobs needed over it (``idle_instances``). An instance unneeded for a boot time has
    cost what a cold start costs (the idle rule, instance by instance), and one started again
    serves before the wait leaves the band. ``None`` otherwise."""
    span = boot.idle(cfg, st)
    last = st.last_change
    below = st.below_since
    if (
        obs.busy != 0
        or span >= cfg.down_delay
        or span * 1000.0 > cfg.up_ms
        or below is None
        or t - below < span
        or (last is not None and t - last < span)
    ):
        return None
    since = t - span
    recent = 0
    for at, quantity, _ in st.window:  # a falling staircase: the first since then is the most
        if at >= since:
            recent = quantity
            break
    desired = recent if recent > low else low
    if desired >= obs.current:
        return None
    return _DOWN, desired, Reason.IDLE_INSTANCES


def down(
    cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, low: int, *, high: int
) -> Step:
    """Below the band: ahead of a recurring burst, up to its instances or hold them; else to
    ``MIN`` once nothing has been due or running for ``UP_COOLDOWN`` (at once, but one
    instance, when a burst on the schedule is over: ``burst_over``) (to 1 while jobs end
    between readings and a cold start would cost a wait above the band: ``warm``); else, below
    it for ``DOWN_DELAY`` (and that long since the last change) with no job running, down to the
    most the jobs needed over ``DOWN_DELAY``, never below ``MIN`` (within ``DOWN_DELAY``, the
    instances unneeded for a boot time where the boot is within the band: ``unneeded``); where
    the backend does not report running jobs, at most ``DOWN_STEP`` at a time."""
    cur = obs.current
    assert st.below_since is not None
    early = ahead(cfg, st, obs, t, high)
    if early is not None:
        return early
    if cur <= low:
        return _HOLD, cur, Reason.AT_MIN
    busy = obs.busy
    if not busy:
        if idle_for(st, t) >= boot.idle(cfg, st):
            if low > 0 or not warm(cfg, st, t):
                return _DOWN, low, Reason.IDLE
            if cur > 1:  # jobs end between readings: one instance runs them
                return _DOWN, 1, Reason.JOBS_ENDED
            return _HOLD, cur, Reason.JOBS_ENDED
        if cur > 1 and burst_over(cfg, st, t):  # the last one: the idle rule's, as ever
            return _DOWN, low if low > 1 else 1, Reason.BURST_OVER
    delay = cfg.down_delay
    if t - st.below_since < delay or (st.last_change is not None and t - st.last_change < delay):
        shed = unneeded(cfg, st, obs, t, low)
        return (_HOLD, cur, Reason.DOWN_DELAY) if shed is None else shed
    if busy:
        return _HOLD, cur, Reason.BUSY
    quantity, _ = sizing.highest(st.window)
    reason = Reason.IDLE if quantity == 0 else Reason.DOWN_TO_JOBS
    if quantity == 0 and low == 0 and warm(cfg, st, t):
        quantity, reason = 1, Reason.JOBS_ENDED
    if busy is None and quantity < cur - cfg.down_step:
        quantity, reason = cur - cfg.down_step, Reason.BELOW_BAND
    desired = quantity if quantity > low else low
    if desired >= cur:
        return _HOLD, cur, Reason.JOBS_ENDED if reason is Reason.JOBS_ENDED else Reason.HEADROOM
    return _DOWN, desired, reason
