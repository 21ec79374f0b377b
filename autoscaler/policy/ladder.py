"""``decide``: the rule ladder, from (config, state, observation, now) to a decision.

Pure: no I/O, no clock reads, no logging. Every duration is measured on monotonic time
(``now.mono``); the wall clock (``now.wall``) is read only for schedules. ``docs/policy.md``
says the same rules in words; each path ends in one ``Reason`` naming the rule that sized it.
"""

from __future__ import annotations

from math import ceil as _ceil
from math import sqrt

from autoscaler.model import Action, Decision, Instant, Observation, Reason, Status
from autoscaler.policy import boot, jobs, load, sizing
from autoscaler.policy import capacity as cap
from autoscaler.policy.config import PolicyConfig
from autoscaler.policy.state import PolicyState, evolve, not_ready, up_held

#: below the band this long while only the forecast holds the instances, one fewer is tried
#: anyway (s); the forecast then adds nothing for ``PROBE_HOLD`` (s) while they are read
PROBE_AFTER = 1800.0
PROBE_HOLD = 300.0
#: a downscale that overloaded before its formation settled keeps that load per instance from
#: the formations it would load as much for this long (s), or until instances carry it quietly
TOO_FEW_FOR = PROBE_AFTER

_UP, _DOWN, _HOLD = Action.UP, Action.DOWN, Action.HOLD
_OK, _SPARSE = Status.OK, Status.SPARSE
_UNTRUSTED = {
    Status.MISSING: Reason.SIGNAL_MISSING,
    Status.STALE: Reason.SIGNAL_STALE,
    Status.FAILED: Reason.SIGNAL_FAILED,
}
Step = tuple[Action, int, Reason]
_new = object.__new__


def decide(
    cfg: PolicyConfig, state: PolicyState, obs: Observation, now: Instant
) -> tuple[Decision, PolicyState]:
    """Decide one process's desired quantity; return it with the state for the next tick."""
    t = now.mono
    cur = obs.current
    sig = obs.signal_ms
    low, high = (cfg.low, cfg.high) if cfg.schedule is None else cfg.bounds(now.wall)
    trusted = sig is not None and (obs.status is _OK or obs.status is _SPARSE)
    adopted = state.known is not None and cur != state.known
    # (positional arguments: these calls run once a tick)
    new, by_use = observe(cfg, state, obs, t, adopted, trusted)
    action, desired, reason = ladder(cfg, new, obs, t, low, high, trusted, by_use)
    if trusted:
        new.signal_last = sig
    if action is _UP:
        new.last_change = t
        if reason is not Reason.RAISED_TO_MIN and not caught_up(cfg, new, reason, t):
            new.last_up = t
        if obs.ready is not None:
            new.boot_at = t  # timed until as many serve as run (``boot``)
    elif action is _DOWN:
        new.last_change = new.last_down = t
        new.boot_at = None
        if reason is Reason.PROBE:
            new.probe_at = new.below_since = t
    new.known = desired
    # every field set here: the dataclass's constructor costs twice as much, once a tick
    decision: Decision = _new(Decision)
    decision.process = cfg.process
    decision.action = action
    decision.current = cur
    decision.desired = desired
    decision.reason = reason
    decision.signal_ms = sig
    decision.status = obs.status
    decision.low = low
    decision.high = high
    decision.adopted = adopted
    decision.boot_s = new.boot
    return decision, new


def ladder(  # noqa: PLR0917 (once a tick: positional)
    cfg: PolicyConfig,
    st: PolicyState,
    obs: Observation,
    t: float,
    low: int,
    high: int,
    trusted: bool,
    by_use: int,
) -> Step:
    """The rules in order; the first that applies decides. ``by_use``: what the requests in
    service need (``early``, as ``observe`` computed it for this tick)."""
    cur = obs.current
    if cur == 0 and cfg.low > 0:
        return _HOLD, cur, Reason.DISABLED_MANUAL_ZERO
    if cur < low:
        return _UP, low, Reason.RAISED_TO_MIN
    if cur > high:
        return _DOWN, high, Reason.LOWERED_TO_MAX
    if cur == 0 and wants_first(obs, trusted):
        return _UP, 1, Reason.SCALE_FROM_ZERO
    if not trusted:
        return _HOLD, cur, _UNTRUSTED.get(obs.status, Reason.SIGNAL_MISSING)
    worker = cfg.scale_from_zero  # a job process (job latency): its own up and down steps
    if st.above_since is not None:
        return jobs.up(cfg, st, obs, t, high) if worker else up(cfg, st, obs, t, high)
    first = None if worker else ahead(cfg, st, obs, t, high, by_use)
    if first is not None:
        return first
    if st.below_since is not None:
        if worker:
            return jobs.down(cfg, st, obs, t, low, high=high)
        return down(cfg, st, obs, t, low, by_use)
    trimmed = None if worker else trim(cfg, st, obs, t, low, by_use)
    return (_HOLD, cur, Reason.IN_BAND) if trimmed is None else trimmed


def wants_first(obs: Observation, trusted: bool) -> bool:
    """A process at 0 with a due or running job (or a signal at all) needs one instance; a
    known depth counts even when the jobs' ages are not known."""
    work = (obs.depth or 0) > 0
    if trusted:
        return work or (obs.busy or 0) > 0 or bool(obs.signal_ms)
    return obs.status is Status.MISSING and work


def observe(  # noqa: PLR0917 (once a tick: positional)
    cfg: PolicyConfig,
    state: PolicyState,
    obs: Observation,
    t: float,
    adopted: bool,
    trusted: bool,
) -> tuple[PolicyState, int]:
    """A new state with the clocks moved and what this tick teaches learned, and what the
    requests in service need (``early``: 0 for a job process and on an untrusted signal, where
    the ladder does not ask)."""
    sig = obs.signal_ms
    above = below = short = None
    if trusted:
        assert sig is not None
        if sig > cfg.up_ms:
            above = t if state.above_since is None else state.above_since
        elif sig < cfg.down_ms:
            below = t if state.below_since is None else state.below_since
    if obs.ready is not None and obs.ready < obs.current:
        short = t if state.short_since is None else state.short_since
    new = evolve(state, above, below, short)
    if adopted:
        new.last_change = t
    if state.boot_at is not None:
        new.boot_at, took = boot.timing(state.boot_at, state.known, obs.current, obs.ready, t)
        if took is not None:
            new.served_at = t
            new.boots = boot.push(state.boots, took)
            new.boot = boot.estimate(new.boots)
    by_use = 0
    if trusted:
        rate = obs.rate_per_s
        if rate is not None:
            new.arriving = arriving(cfg, state, obs.signal_ms, rate, t)
            burst = learn(cfg, new, obs, rate, t)
            share = state.over_share
            if not cfg.scale_from_zero:  # (a job process's steps never read the rate's spare)
                over = above is not None and not burst  # (a burst is no fault of the spare)
                new.over_share = share = load.over_share(share, state.rate_at, t, over)
            new.expected = load.expected(new, rate, t, load.spare(cfg.headroom, share))
        if cfg.scale_from_zero:  # a job process: what its jobs need (slots learned)
            quantity, by_load = jobs.recommend(cfg, new, obs, t)
        else:
            by_use = early(cfg, new, obs, t)
            quantity, by_load = recommend(cfg, new, obs, t, by_use)
            if new.too_few is not None:  # (the call only when one is kept: once a tick)
                fewest = too_few(cfg, new, obs, t)
                if fewest and fewest > quantity:
                    quantity, by_load = fewest, True
        new.window = sizing.push(new.window, t, quantity, by_load, cfg.down_delay)
    return new, by_use


def learn(cfg: PolicyConfig, new: PolicyState, obs: Observation, rate: float, t: float) -> bool:
    """Teach ``new`` (a fresh state) this tick's reading: the rate's mean and spread, and, on a
    settled formation with enough requests, the signal against the load per instance (an
    overload read while the load is rising is left out: ``capacity.rising``) and, below the
    band, the most load per instance carried quietly (forgotten when an overload comes at that
    load or less, on a settled formation or right after a downscale). Returns whether the
    rate read is a burst above its mean (``load.track``)."""
    sig = obs.signal_ms
    assert sig is not None
    cur, ready = obs.current, obs.ready
    serving = cur if ready is None or ready > cur else ready
    if obs.status is _OK and serving > 0 and rate * cfg.window >= cap.LEARN_SAMPLES:
        # ``capacity.readable``, inline: the formation settled, any overload its own
        last, above = new.last_change, new.above_since
        settle = cfg.settle_s  # boot.settle plus WINDOW
        settled = last is None or (t - last >= settle and (above is None or above - last >= settle))
        at = new.rate_at
        # an overload counts only if read on a steady rate and queued within the window (a
        # wait longer than the window was queued by load from before it); whether the rate
        # rises is asked only of an overload
        prev = new.signal_last
        overload = sig > cfg.up_ms and (
            (at is not None and cap.rising(rate, new.rate_last, t - at, cfg.window))
            or sig > cfg.window * 1000.0
            or (prev is not None and sig < prev)
        )
        if settled and new.below_since is not None:  # a quiet reading (sig < down_ms)
            load_now = rate / serving
            if new.quiet is None or load_now > new.quiet:
                new.quiet = load_now
            few = new.too_few
            if few is not None and load_now >= few[0]:
                new.too_few = None  # they carry it now
        elif (
            sig > cfg.up_ms
            and new.quiet is not None
            and rate / serving <= new.quiet
            and (settled or (last is not None and last == new.last_down))
        ):
            # an overload at that load per instance or less, on a settled formation or right
            # after a downscale: the instances no longer carry it quietly (the app got slower)
            new.quiet = None
        if (
            not overload
            and sig > cfg.up_ms
            and last is not None
            and last == new.last_down
            and not settled
        ):
            # an overload the last downscale brought (on a steady rate): these instances are
            # too few for this load per instance
            load_now = rate / serving
            few = new.too_few
            if few is None or load_now < few[0] or t - few[1] >= TOO_FEW_FOR:
                new.too_few = (load_now, t)
        if settled and not overload:
            up, top = cfg.up_ms, cfg.top_ms  # top: where the upper half of the band begins
            new.bins, changed = cap.update(new.bins, rate / serving, sig, top, up)
            if changed:
                new.capacity, new.sure = cap.estimate(new.bins, top, up)
            in_use = obs.in_use
            if in_use is not None and in_use > 0:
                new.slot_bins, changed = cap.update(new.slot_bins, in_use / serving, sig, top, up)
                if changed:
                    slots, sure = cap.estimate(new.slot_bins, top, up)
                    new.slots = slots if sure else None
    new.rate_mean, new.rate_var, new.rate_since, burst = load.track(new, rate, t)
    new.rate_at, new.rate_last = t, rate
    return burst


#: the queue time's rise per second counted at most this (the rate read is then a tenth of the
#: rate requests arrive at)
RISE_MAX = 0.9


def arriving(
    cfg: PolicyConfig, state: PolicyState, signal_ms: float | None, rate: float, t: float
) -> float | None:
    """Above the band on this tick and the last, with the queue time rising since: the rate
    requests arrive at. The rate read counts the requests that started in the window; one
    starting now arrived a queue time ago, so with the queue time rising by ``w'`` per second
    they started at ``1 - w'`` times the rate they arrived at (first in, first out). A rise
    from inside the band is no queue yet (one slow reading, or the first of an overload)."""
    prev, at = state.signal_last, state.rate_at
    if signal_ms is None or prev is None or prev <= cfg.up_ms or signal_ms <= prev:
        return None
    if at is None or t <= at:
        return None
    rise = (signal_ms - prev) / (1000.0 * (t - at))
    return rate / (1.0 - (rise if rise < RISE_MAX else RISE_MAX))


def recommend(
    cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, by_use: int
) -> tuple[int, bool]:
    """What a downscale now would go to, and whether the load sized it: the most of what the
    expected rate needs at what one instance carries (when sure) and what the requests in
    service need (the early signal, when learned: ``by_use``), so that no downscale undoes
    itself; with only a floor, no more than ``DOWN_STEP`` below the current unless the floor
    says fewer still (``floor_or_sure``: the load carried quietly below the band is a floor
    too); with nothing known, ``DOWN_STEP`` below the current."""
    step_down = obs.current - cfg.down_step
    by_rate = 0
    rate, capacity = obs.rate_per_s, floor_or_sure(st)
    if capacity is not None and rate is not None:
        expected = st.expected
        # sizing.instances_for, inline
        by_rate = _ceil((rate if expected is None else expected) / capacity - 1e-9)
        if not st.sure:
            if not by_use:
                return (by_rate, True) if by_rate < step_down else (step_down, False)
            by_rate = 0  # a floor says less than the requests in service
    if by_use or by_rate:
        return (by_use if by_use > by_rate else by_rate), True
    return step_down, False


def too_few(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float) -> int:
    """The fewest instances that each carry clearly less than a load per instance that
    overloaded a formation right after a downscale (``PolicyState.too_few``, within
    ``TOO_FEW_FOR``): the rate plus ``RISE_SIGMAS`` standard deviations of its Poisson count
    noise over the window (the same load read again may read a little lower); 0 when none is
    known."""
    few, rate = st.too_few, obs.rate_per_s
    if few is None or rate is None or t - few[1] >= TOO_FEW_FOR:
        return 0
    return int((rate + cap.RISE_SIGMAS * sqrt(rate / cfg.window)) / few[0]) + 1


def up(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, high: int) -> Step:
    """Above the band: wait out ``UP_SENSITIVITY`` and ``UP_COOLDOWN``, then size the upscale."""
    cur = obs.current
    assert obs.signal_ms is not None
    cooldown = boot.cooldown(cfg, st)
    held = up_held(cfg, st, cur, t, high, cooldown=cooldown)
    # the rate an upscale sizes for, here or in the catch-up: the rate requests arrive at
    # where the queue time rises (``arriving``), else the rate read
    rate = obs.rate_per_s
    if rate is not None and st.arriving is not None:
        rate = st.arriving
    if held is Reason.UP_COOLDOWN:
        return catch_up(cfg, st, obs, t, high, rate)
    if held is not None:
        return _HOLD, cur, held
    if obs.status is _SPARSE:
        desired, reason = cur + 1, Reason.ABOVE_BAND
    elif cfg.up_step:
        desired, reason = cur + cfg.up_step, Reason.ABOVE_BAND
    elif rate is not None and (carries := floor_or_sure(st)) is not None:
        drain = max(boot.drain(cfg, st), cfg.window)
        desired = sizing.for_load_and_backlog(rate, obs.signal_ms, cur, carries, drain)
        desired = min(max(desired, cur + 1), sizing.up_limit(cur, high))
        reason = Reason.UP_TO_LOAD
    elif draining(cfg, st, obs.signal_ms, t, cooldown):
        return _HOLD, cur, Reason.UP_COOLDOWN
    else:
        desired, reason = sizing.for_overload(cur, obs.signal_ms, cfg.up_ms), Reason.ABOVE_BAND
    wanted = min(forecast(cfg, st, obs, t), sizing.up_limit(cur, high))
    if wanted > desired:  # the forecast asks for more than the overload (booting ones counted)
        desired, reason = wanted, Reason.FORECAST
    return _UP, min(desired, high), reason


def draining(
    cfg: PolicyConfig, st: PolicyState, signal_ms: float, t: float, cooldown: float
) -> bool:
    """Whether the queue time, falling, still shows waits from before the last upscale's
    instances served: while they boot and for ``WINDOW`` after they all serve (where the
    platform says which serve: else ``cooldown`` plus ``WINDOW`` after the upscale), a falling
    signal is the queue draining, not an overload to size."""
    last, prev = st.last_up, st.signal_last
    if last is None or prev is None or signal_ms >= prev:
        return False
    if st.boot_at is not None:
        return True  # still booting
    drain = max(boot.drain(cfg, st), cfg.window)
    served = st.served_at
    if served is not None and served >= last:
        return t - served < drain
    return t - last < cooldown + drain


def floor_or_sure(st: PolicyState) -> float | None:
    """What one instance carries as the downscale's recommendation and an upscale out of the
    cooldown size it: the sure estimate, or with only floors the higher of the learned floor
    and the most load per instance carried quietly (``PolicyState.quiet``). The rate's catch-up
    within ``UP_COOLDOWN`` keeps the learned floor (measured: ``docs/policy-history.md``)."""
    capacity, quiet = st.capacity, st.quiet
    if quiet is not None and not st.sure and (capacity is None or quiet > capacity):
        return quiet
    return capacity


def catch_up(  # noqa: PLR0917 (above the band, every tick of a cooldown: positional)
    cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, high: int, rate: float | None
) -> Step:
    """Within ``UP_COOLDOWN`` of an upscale, above the band: the queue still shows the wait from
    before the added instances serve, so the signal waits; but the arrival rate does not depend
    on them: when the rate alone needs more instances than run (booting ones counted), up to
    that many (a load still rising after the last upscale was sized). ``rate``: the rate
    ``up`` sizes for (``None`` where none was read)."""
    cur = obs.current
    capacity = st.capacity
    if rate is None or capacity is None or obs.status is not _OK or not_ready(cfg, st, t):
        return _HOLD, cur, Reason.UP_COOLDOWN
    needed = sizing.instances_for(rate, capacity)
    if needed <= cur:
        return _HOLD, cur, Reason.UP_COOLDOWN
    return _UP, min(needed, sizing.up_limit(cur, high)), Reason.UP_TO_LOAD


def caught_up(cfg: PolicyConfig, st: PolicyState, reason: Reason, t: float) -> bool:
    """Whether an upscale was the rate's catch-up within ``UP_COOLDOWN`` (``catch_up``): it
    keeps the cooldown of the upscale before it, so that the signal sizes the backlog one
    cooldown after that one, not one cooldown after the rate last rose."""
    last = st.last_up
    return (
        reason is Reason.UP_TO_LOAD
        and st.above_since is not None
        and last is not None
        and t - last < boot.cooldown(cfg, st)
    )


def forecast(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float) -> int:
    """The instances the expected rate needs, once what one instance carries is sure (0 while
    a probe is read or nothing is known)."""
    rate = obs.rate_per_s
    if (
        rate is None
        or not st.sure
        or st.capacity is None
        or obs.status is not _OK
        or (st.probe_at is not None and t - st.probe_at < PROBE_HOLD)
    ):
        return 0
    expected = st.expected
    return _ceil((rate if expected is None else expected) / st.capacity - 1e-9)  # instances_for


def early(cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float) -> int:
    """The instances the requests in service need at what one instance serves at once with the
    signal at the top of the band (scaled like the rate to the expected rate); 0 when either
    is unknown."""
    in_use, rate, slots = obs.in_use, obs.rate_per_s, st.slots
    if in_use is None or slots is None or obs.status is not _OK:
        return 0
    if rate is not None and rate > 0.0:
        expected = st.expected  # the rate to keep capacity for, as computed for this tick
        in_use *= (rate if expected is None else expected) / rate
    return _ceil(in_use / slots - 1e-9)  # sizing.instances_for, inline


def ahead(  # noqa: PLR0917 (once a tick: positional)
    cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, high: int, by_use: int
) -> Step | None:
    """Below the up threshold, up anyway when the forecast (the rate) or the early signal (the
    requests in service: ``by_use``, from ``early``) needs more instances than run, booting
    ones counted; the same ``UP_COOLDOWN`` as any upscale."""
    cur = obs.current
    if cur >= high or (st.last_up is not None and t - st.last_up < boot.cooldown(cfg, st)):
        return None
    by_rate = forecast(cfg, st, obs, t)
    wanted = by_rate if by_rate >= by_use else by_use
    if wanted <= cur or not_ready(cfg, st, t):
        return None
    reason = Reason.FORECAST if by_rate >= by_use else Reason.EARLY
    return _UP, min(wanted, sizing.up_limit(cur, high)), reason


def down(  # noqa: PLR0917 (once a tick: positional)
    cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, low: int, by_use: int
) -> Step:
    """Below the band for ``DOWN_DELAY`` (and that long since the last change): down to the
    highest recommendation of the window, never below ``MIN``, never to 0 with jobs running
    (``by_use``: what the requests in service need, from ``early``)."""
    cur = obs.current
    assert st.below_since is not None
    if cur <= low:
        return _HOLD, cur, Reason.AT_MIN
    delay = cfg.down_delay
    if t - st.below_since < delay:
        return _HOLD, cur, Reason.DOWN_DELAY
    quantity, by_load = sizing.highest(st.window)
    last = st.last_change
    if (
        last is not None
        and t - last < delay
        and not (
            # after a downscale, one sized by the load follows the window down (it already holds
            # the highest recommendation of DOWN_DELAY) once the signal's window shows the formation
            by_load and last == st.last_down and t - last >= cfg.window
        )
    ):
        return _HOLD, cur, Reason.DOWN_DELAY
    desired = quantity if quantity > low else low
    if desired == 0 and ((obs.busy or 0) > 0 or (obs.depth or 0) > 0):
        desired = 1
        if cur == 1:
            return _HOLD, cur, Reason.BUSY
    if desired < cur:
        return _DOWN, desired, Reason.DOWN_TO_LOAD if by_load else Reason.BELOW_BAND
    # no probe the early signal would undo on the next tick (the requests in service need
    # them), nor one to a formation a downscale just found too few for this load per instance
    least = low if low > 1 else 1
    if probe_due(st, obs, t, least) and by_use < cur and too_few(cfg, st, obs, t) < cur:
        return _DOWN, cur - 1, Reason.PROBE
    return _HOLD, cur, Reason.HEADROOM


#: inside the band, a formation goes down to what the load needs only while the share of readings
#: above the band is below this fraction of ``load.SHARE_BUDGET`` (the app keeps its SLO with
#: room to spare)
TRIM_SHARE = 0.5


def trim(  # noqa: PLR0917 (once a tick in the band: positional)
    cfg: PolicyConfig, st: PolicyState, obs: Observation, t: float, low: int, by_use: int
) -> Step | None:
    """Inside the band's lower half (below ``top_ms``) with the app's record above the band
    clean (under ``TRIM_SHARE`` of the budget), ``DOWN_DELAY`` since the last change: down to
    the stabilisation window's highest recommendation when the load sized it (``recommend``:
    with only a floor of what one instance carries, when it says more than ``DOWN_STEP``
    fewer), never below ``MIN`` nor what the requests in service need; else ``None``."""
    share, sig, cur = st.over_share, obs.signal_ms, obs.current
    if share is None or share >= TRIM_SHARE * load.SHARE_BUDGET or sig is None or sig >= cfg.top_ms:
        return None
    last = st.last_change
    if last is not None and t - last < cfg.down_delay:
        return None
    quantity, by_load = sizing.highest(st.window)
    if not by_load:
        return None
    desired = max(quantity, low, by_use, 1)
    return None if desired >= cur else (_DOWN, desired, Reason.DOWN_IN_BAND)


def probe_due(st: PolicyState, obs: Observation, t: float, least: int) -> bool:
    """Below the band for ``PROBE_AFTER`` while only the forecast holds the instances, and one
    fewer would each carry more than learned: what one instance carries can only be learned
    above what it has carried."""
    assert st.below_since is not None
    rate = obs.rate_per_s
    return (
        st.sure
        and st.capacity is not None
        and rate is not None
        and obs.current - 1 >= least
        and t - st.below_since >= PROBE_AFTER
        and rate > st.capacity * (obs.current - 1)
    )
