"""The policy engine: a pure function from (config, state, observation, now) to a decision.

No I/O, no clock reads, no logging: the daemon, ``simulate`` and ``tune`` all call ``decide``,
so what the simulator shows is what the daemon does. Every duration is measured on monotonic
time (``now.mono``); the wall clock (``now.wall``) is read only for schedules.

The rules, in order (README "The policy" says the same in words):

1. A quantity that differs from the one we last saw or set was changed by someone else: it is
   adopted as the new current, and counts as a change (the next downscale waits ``DOWN_DELAY``).
2. A process at 0 whose ``MIN`` is above 0 was turned off by a person: hands off.
3. Outside the bounds in force (``MIN``/``MAX`` with the schedule applied): move to the bound.
4. A worker at 0 (``MIN`` 0) with a due or running job: to 1 at once (also when only the queue's
   depth is known, e.g. Celery messages without a publish stamp).
5. A missing, stale or failed signal: hold (never a downscale).
6. Above the up threshold for ``UP_SENSITIVITY`` and not within ``UP_COOLDOWN`` of the last
   upscale: up by ``UP_STEP`` (``auto``: in proportion to the overload, at most doubling; one
   at a time on a sparse signal). When the source reports the arrival rate, ``auto`` sizes the
   overload by that rate: enough instances to bring each back to the highest per-instance rate
   seen so far with a trusted signal at or below the up threshold (the utilization law: the
   same instances carried that load in band); until such a rate is known, by the ratio of the
   signal to the up threshold. Never fewer than the forecast (rule 7) asks for. Where the
   platform reports how many instances serve, no further upscale once fewer instances have
   served than run for ``PROVISION_TIMEOUT`` on end (a crash loop or a quota: more of the same
   would not help, and the daemon alerts instead).
7. The forecast, when the source reports the arrival rate and what one instance carries is
   known: keep capacity for the recent mean arrival rate plus ``HEADROOM`` standard deviations
   of it (both exponentially weighted over ``RATE_TAU``; never less than the current rate).
   Fewer instances than that: up to that many at once (at most doubling), whatever the signal
   says, booting instances counted. What one instance carries is read off the signal against
   the load per instance (requests/s per serving instance, in bins 5% wide, each keeping the
   mean signal of its recent readings; only readings with the formation settled, that is
   ``UP_COOLDOWN`` plus the source's ``WINDOW`` after the last change, and a p95 over at least
   ``LEARN_SAMPLES`` requests): walking up the loads read often enough, the last one before the
   mean signal goes above the up threshold. Unknown until some load has had its mean signal in
   the upper half of the band (lower loads only bound it loosely from below, and the forecast
   would then keep far too many).
8. Below the down threshold for ``DOWN_DELAY``, and ``DOWN_DELAY`` since the last change (``auto``:
   ``DOWN_DELAY_FORECAST`` while the forecast is known, ``DOWN_DELAY_SIGNAL`` otherwise): down by
   ``DOWN_STEP``; never to 0 while jobs are running; never below what the forecast keeps (rule
   7), so that a downscale does not buy the next upscale. Below the down threshold for
   ``PROBE_AFTER`` while only the forecast holds the instances: down anyway if the fewer
   instances would each carry more than learned (a probe: what one instance carries can only
   be learned above what it has carried; the forecast adds nothing for ``PROBE_HOLD`` while
   they are read; rule 6 still applies).
9. Otherwise hold; inside the band the "below since" clock restarts.
"""

from __future__ import annotations

import math
from typing import Any

from autoscaler.config import ProcessSettings
from autoscaler.model import Action, Decision, Instant, Metric, Observation, Reason, Status
from autoscaler.schedule import Schedule

_UP, _DOWN, _HOLD = Action.UP, Action.DOWN, Action.HOLD
#: the arrival rate's recent mean and spread are exponentially weighted over this long (s)
RATE_TAU = 900.0
#: what one instance carries is unknown until a load has had its mean signal this far up the
#: band
LEARN_FROM = 0.5
#: readings of the signal count only with a p95 over at least this many requests (15 of them
#: above it): fewer can land anywhere in their tail
LEARN_SAMPLES = 300
#: a bin of load counts as fine once it holds this many readings, as too much with this many;
#: its means weigh the last ``BIN_MEMORY`` readings most (the app may get faster or slower)
BIN_READINGS = 20
STOP_READINGS = 2
BIN_MEMORY = 20
#: below the band this long, a downscale only the forecast forbids is tried anyway (s); the
#: forecast then adds nothing for ``PROBE_HOLD`` (s), while the fewer instances are read
PROBE_AFTER = 1800.0
PROBE_HOLD = 300.0
#: ``DOWN_DELAY=auto``: with the forecast known (rule 7), and without it (s)
DOWN_DELAY_FORECAST = 60.0
DOWN_DELAY_SIGNAL = 300.0
_PER_LOG = 1.0 / math.log(1.05)  # bins of load 5% wide
_OK, _SPARSE = Status.OK, Status.SPARSE
_UNTRUSTED = {
    Status.MISSING: Reason.SIGNAL_MISSING,
    Status.STALE: Reason.SIGNAL_STALE,
    Status.FAILED: Reason.SIGNAL_FAILED,
}


class PolicyConfig:
    """The settings ``decide`` reads, flattened into plain numbers for speed."""

    __slots__ = (
        "down_delay",
        "down_ms",
        "down_step",
        "headroom",
        "high",
        "low",
        "process",
        "provision_timeout",
        "scale_from_zero",
        "schedule",
        "up_cooldown",
        "up_ms",
        "up_sensitivity",
        "up_step",
        "window",
    )

    def __init__(
        self,
        process: str = "web",
        *,
        low: int = 1,
        high: int = 10,
        up_ms: float = 200.0,
        down_ms: float = 50.0,
        up_step: int = 0,
        down_step: int = 1,
        up_sensitivity: float = 0.0,
        up_cooldown: float = 60.0,
        down_delay: float | None = None,
        scale_from_zero: bool = False,
        schedule: Schedule | None = None,
        provision_timeout: float = 600.0,
        headroom: float = 1.8,
        window: float = 30.0,
    ) -> None:
        if low < 0 or high < max(low, 1):
            raise ValueError(f"bounds {low}..{high} are not valid")
        if not 0 <= down_ms < up_ms:
            raise ValueError(f"down threshold {down_ms} must be below up threshold {up_ms}")
        if not 0 <= headroom <= 10:
            raise ValueError(f"headroom {headroom} must be between 0 and 10")
        self.process = process
        self.low = low
        self.high = high
        self.up_ms = up_ms
        self.down_ms = down_ms
        self.up_step = up_step  # 0 means auto
        self.down_step = down_step
        self.up_sensitivity = up_sensitivity
        self.up_cooldown = up_cooldown
        self.down_delay = down_delay  # None: auto (rule 8)
        self.scale_from_zero = scale_from_zero
        self.schedule = schedule
        self.provision_timeout = provision_timeout
        # capacity is kept for the recent mean arrival rate plus this many standard deviations
        self.headroom = headroom
        self.window = window  # how far back the signal looks (s)

    @classmethod
    def from_settings(cls, p: ProcessSettings) -> PolicyConfig:
        return cls(
            p.name,
            low=p.min,
            high=p.max,
            up_ms=p.up_threshold_ms,
            down_ms=p.down_threshold_ms,
            up_step=p.up_step or 0,
            down_step=p.down_step,
            up_sensitivity=p.up_sensitivity,
            up_cooldown=p.up_cooldown,
            down_delay=p.down_delay,
            scale_from_zero=p.metric is Metric.JOB_LATENCY,
            schedule=p.parsed_schedule,
            provision_timeout=p.provision_timeout,
            headroom=p.headroom,
            window=p.window,
        )

    def replace(self, **changes: Any) -> PolicyConfig:
        """A copy with ``changes`` applied (and validated), every other setting kept."""
        values: dict[str, Any] = {s: getattr(self, s) for s in self.__slots__ if s != "process"}
        values.update(changes)
        return PolicyConfig(self.process, **values)

    def bounds(self, wall: float) -> tuple[int, int]:
        """The bounds in force at ``wall`` (schedule applied)."""
        if self.schedule is None:
            return self.low, self.high
        return self.schedule.bounds(wall, self.low, self.high)


class PolicyState:
    """What ``decide`` remembers between ticks. Immutable by convention: ``decide`` returns a new
    one. Times are monotonic seconds; ``None`` means never / not currently."""

    __slots__ = (
        "above_since",
        "below_since",
        "bins",
        "capacity",
        "healthy_rate",
        "known",
        "last_change",
        "last_up",
        "probe_at",
        "rate_at",
        "rate_mean",
        "rate_since",
        "rate_var",
        "short_since",
    )

    def __init__(
        self,
        known: int | None = None,
        above_since: float | None = None,
        below_since: float | None = None,
        last_up: float | None = None,
        last_change: float | None = None,
        *,
        healthy_rate: float | None = None,
        short_since: float | None = None,
        rate_mean: float | None = None,
        rate_var: float = 0.0,
        rate_at: float | None = None,
        rate_since: float | None = None,
        capacity: float | None = None,
        probe_at: float | None = None,
        bins: dict[int, tuple[float, int]] | None = None,
    ) -> None:
        self.known = known  # the quantity we last saw or set
        self.above_since = above_since
        self.below_since = below_since
        self.last_up = last_up
        self.last_change = last_change
        # the highest arrival rate per instance (requests/s) seen with a trusted signal at or
        # below the up threshold; sizes ``auto`` upscales when the source reports a rate
        self.healthy_rate = healthy_rate
        # since when fewer instances serve than run (where the platform reports it)
        self.short_since = short_since
        # the arrival rate's exponentially weighted mean and variance, when they were last
        # updated and since when they have been kept
        self.rate_mean = rate_mean
        self.rate_var = rate_var
        self.rate_at = rate_at
        self.rate_since = rate_since
        # what one instance carries (requests/s) with the signal at the top of the band
        self.capacity = capacity
        # the signal against the load per instance: per bin of load (5% wide: bin k holds
        # loads from 1.05**k to 1.05**(k+1) requests/s), the mean signal and the number of
        # readings; never changed in place
        self.bins: dict[int, tuple[float, int]] = {} if bins is None else bins
        self.probe_at = probe_at  # when fewer instances were last tried despite the forecast

    def __repr__(self) -> str:
        return (
            f"PolicyState(known={self.known}, above_since={self.above_since}, "
            f"below_since={self.below_since}, last_up={self.last_up}, "
            f"last_change={self.last_change}, healthy_rate={self.healthy_rate}, "
            f"short_since={self.short_since}, rate_mean={self.rate_mean}, "
            f"rate_var={self.rate_var}, rate_at={self.rate_at}, rate_since={self.rate_since}, "
            f"capacity={self.capacity}, probe_at={self.probe_at})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicyState):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


def initial_state(updated_at: float | None, now: Instant) -> PolicyState:
    """State for a process seen for the first time (a start or a leadership handover).

    If the platform says when the formation last changed, that change counts as the last change,
    so a new leader does not scale down right after another one scaled up.
    """
    if updated_at is None or updated_at > now.wall:
        return PolicyState()
    return PolicyState(last_change=now.mono - (now.wall - updated_at))


def auto_step(current: int, signal_ms: float, up_ms: float) -> int:
    """Instances to add for an overload of ``signal_ms`` against ``up_ms``: in proportion to the
    overload, at least one, at most doubling (plus one from zero)."""
    if current <= 0:
        return 1
    step = math.ceil(current * (signal_ms / up_ms - 1.0))
    if step < 1:
        return 1
    return min(step, current)


_WEIGHTS: dict[float, float] = {}


def _weight(dt: float) -> float:
    """The weight of a reading ``dt`` seconds after the last in the rate's mean and spread."""
    w = _WEIGHTS.get(dt)
    if w is None:
        w = 1.0 - math.exp(-dt / RATE_TAU)
        if len(_WEIGHTS) < 64:  # ticks are evenly spaced: a handful of gaps in practice
            _WEIGHTS[dt] = w
    return w


def learn(
    bins: dict[int, tuple[float, int]], per_instance: float, signal_ms: float
) -> tuple[dict[int, tuple[float, int]], int]:
    """``bins`` with one more reading of the signal at a load of ``per_instance`` requests/s per
    instance (a new dict: the mean of the first readings, then exponentially weighted), and the
    bin it went to."""
    k = math.floor(math.log(per_instance) * _PER_LOG)
    old = bins.get(k)
    if old is None:
        new = (signal_ms, 1)
    else:
        mean, n = old
        new = (mean + (signal_ms - mean) / (n + 1 if n < BIN_MEMORY else BIN_MEMORY), n + 1)
    out = dict(bins)
    out[k] = new
    return out, k


def _kind(entry: tuple[float, int] | None, top_ms: float, up_ms: float) -> int:
    """0: not enough readings; 1: in the band; 2: near the top of it; 3: above it."""
    if entry is None:
        return 0
    signal_ms, n = entry
    if signal_ms > up_ms:
        return 3 if n >= STOP_READINGS else 0
    if n < BIN_READINGS:
        return 0
    return 2 if signal_ms >= top_ms else 1


def capacity_from(bins: dict[int, tuple[float, int]], top_ms: float, up_ms: float) -> float | None:
    """What one instance carries with the signal within ``up_ms``: walking up the bins of load
    read often enough, the last one before the mean signal goes above ``up_ms`` (its middle);
    ``None`` until a load with its mean signal near the top of the band (``top_ms`` and up)
    has been seen (lower loads only bound it from below, and loosely)."""
    best = None
    near_top = False
    for k in sorted(bins):
        kind = _kind(bins[k], top_ms, up_ms)
        if kind == 3:
            break
        if kind:
            best = k
            near_top = near_top or kind == 2
    if best is None or not near_top:
        return None
    return math.exp((best + 0.5) / _PER_LOG)


def down_delay(cfg: PolicyConfig, capacity: float | None) -> float:
    """``DOWN_DELAY`` in force: as set, or (``auto``) short while the forecast guards downscales
    and long without it."""
    if cfg.down_delay is not None:
        return cfg.down_delay
    return DOWN_DELAY_FORECAST if capacity is not None else DOWN_DELAY_SIGNAL


def rate_step(current: int, rate_per_s: float, healthy_rate: float) -> int:
    """Instances to add so that each carries at most ``healthy_rate`` of ``rate_per_s``: at
    least one, at most doubling (plus one from zero)."""
    if current <= 0:
        return 1
    step = math.ceil(rate_per_s / healthy_rate - 1e-9) - current
    if step < 1:
        return 1
    return min(step, current)


def decide(
    cfg: PolicyConfig, state: PolicyState, obs: Observation, now: Instant
) -> tuple[Decision, PolicyState]:
    """Decide one process's desired quantity. Pure; see the module docstring for the rules."""
    t = now.mono
    cur = obs.current
    sig = obs.signal_ms
    status = obs.status
    last_up = state.last_up
    last_change = state.last_change
    adopted = state.known is not None and cur != state.known
    if adopted:
        last_change = t

    low, high = (cfg.low, cfg.high) if cfg.schedule is None else cfg.bounds(now.wall)
    trusted = sig is not None and (status is _OK or status is _SPARSE)

    above_since = below_since = None
    if trusted:
        assert sig is not None
        if sig > cfg.up_ms:
            above_since = t if state.above_since is None else state.above_since
        elif sig < cfg.down_ms:
            below_since = t if state.below_since is None else state.below_since

    short_since = None
    if obs.ready is not None and obs.ready < cur:
        short_since = t if state.short_since is None else state.short_since

    rate = obs.rate_per_s
    healthy = state.healthy_rate
    capacity = state.capacity
    bins = state.bins
    mean, var, rate_at, since = state.rate_mean, state.rate_var, state.rate_at, state.rate_since
    need = 0  # instances the recent arrival rate calls for (0: unknown)
    if rate is not None and trusted:
        assert sig is not None
        if status is _OK and sig <= cfg.up_ms and cur > 0 and rate > (healthy or 0.0) * cur:
            healthy = rate / cur
        serving = cur if obs.ready is None or obs.ready > cur else obs.ready
        if (
            status is _OK
            and serving > 0
            and rate * cfg.window >= LEARN_SAMPLES
            and (last_change is None or t - last_change >= cfg.up_cooldown + cfg.window)
        ):
            # What one instance carries, read off the signal against the load per instance,
            # with the formation settled (the signal's window all after the last change,
            # booting instances serving) and a p95 over enough requests to trust.
            top = cfg.down_ms + LEARN_FROM * (cfg.up_ms - cfg.down_ms)
            before = bins
            bins, k = learn(bins, rate / serving, sig)
            if _kind(before.get(k), top, cfg.up_ms) != _kind(bins[k], top, cfg.up_ms):
                capacity = capacity_from(bins, top, cfg.up_ms)
        if mean is None or rate_at is None or since is None or t <= rate_at:
            mean, var, since = rate, 0.0, t
        else:
            a = _weight(t - rate_at)
            d = rate - mean
            mean += a * d
            var = (1.0 - a) * (var + a * d * d)
        rate_at = t
        if capacity is not None and status is _OK:
            expected = rate
            if cfg.headroom > 0.0 and t > since:
                # the spread, corrected for the weight not yet given to the past
                age = t - since
                spread = math.sqrt(var if age > 20.0 * RATE_TAU else var / _weight(age))
                expected = max(rate, mean + cfg.headroom * spread)
            need = math.ceil(expected / capacity - 1e-9)
    not_ready = short_since is not None and t - short_since >= cfg.provision_timeout
    probe_at = state.probe_at
    forecast_up = (
        0 < cur < need
        and cur < high
        and not not_ready
        and (probe_at is None or t - probe_at >= PROBE_HOLD)
    )
    forecast_to = min(high, need, 2 * cur)  # what a forecast upscale goes to

    action = _HOLD
    desired = cur
    if cur == 0 and cfg.low > 0:
        reason = Reason.DISABLED_MANUAL_ZERO
    elif cur < low:
        action, desired, reason = _UP, low, Reason.RAISED_TO_MIN
    elif cur > high:
        action, desired, reason = _DOWN, high, Reason.LOWERED_TO_MAX
    elif cur == 0 and (
        (trusted and ((obs.depth or 0) > 0 or (obs.busy or 0) > 0 or sig))
        or (status is Status.MISSING and (obs.depth or 0) > 0)  # depth known, age unknown
    ):
        action, desired, reason = _UP, 1, Reason.SCALE_FROM_ZERO
    elif not trusted:
        reason = _UNTRUSTED.get(status, Reason.SIGNAL_MISSING)
    elif above_since is not None:
        assert sig is not None
        if cur >= high:
            reason = Reason.AT_MAX
        elif forecast_up and (
            t - above_since < cfg.up_sensitivity
            or (last_up is not None and t - last_up < cfg.up_cooldown)
        ):
            # the instances still booting count in ``cur``: even more are needed
            action, desired, reason = _UP, forecast_to, Reason.FORECAST
        elif t - above_since < cfg.up_sensitivity:
            reason = Reason.UP_SENSITIVITY
        elif last_up is not None and t - last_up < cfg.up_cooldown:
            reason = Reason.UP_COOLDOWN
        elif not_ready:
            reason = Reason.NOT_READY  # adding more would not help: find out why they never came
        else:
            if status is _SPARSE:
                step = 1
            elif cfg.up_step:
                step = cfg.up_step
            elif rate is not None and healthy is not None:
                step = rate_step(cur, rate, healthy)
            else:
                step = auto_step(cur, sig, cfg.up_ms)
            # the step, or what the forecast asks for when that is more
            desired = max(min(high, cur + step), forecast_to)
            action, reason = _UP, Reason.ABOVE_BAND
    elif forecast_up:
        action, desired, reason = _UP, forecast_to, Reason.FORECAST
    elif below_since is not None:
        if cur <= low:
            reason = Reason.AT_MIN
        elif t - below_since < (delay := down_delay(cfg, capacity)) or (
            last_change is not None and t - last_change < delay
        ):
            reason = Reason.DOWN_DELAY
        else:
            desired = max(low, cur - cfg.down_step)
            if desired == 0 and ((obs.busy or 0) > 0 or (obs.depth or 0) > 0):
                desired = 1
            if desired == cur:
                reason = Reason.BUSY
            elif desired < need:
                assert capacity is not None and rate is not None  # a need means both
                if desired > 0 and t - below_since >= PROBE_AFTER and rate > capacity * desired:
                    # below the band for so long that the instances must carry more than
                    # learned: try with fewer (the forecast waits PROBE_HOLD while they are read)
                    action, reason = _DOWN, Reason.PROBE
                    probe_at = below_since = t
                else:
                    desired, reason = cur, Reason.HEADROOM
            else:
                action, reason = _DOWN, Reason.BELOW_BAND
    else:
        reason = Reason.IN_BAND

    if action is _UP:
        last_change = t
        if reason is not Reason.RAISED_TO_MIN:
            last_up = t
    elif action is _DOWN:
        last_change = t
    decision = Decision(cfg.process, action, cur, desired, reason, sig, status, low, high, adopted)
    return decision, PolicyState(
        desired,
        above_since,
        below_since,
        last_up,
        last_change,
        healthy_rate=healthy,
        short_since=short_since,
        rate_mean=mean,
        rate_var=var,
        rate_at=rate_at,
        rate_since=since,
        capacity=capacity,
        probe_at=probe_at,
        bins=bins,
    )
