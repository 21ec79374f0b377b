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
   signal to the up threshold. Where the platform reports how many instances serve, no further
   upscale once fewer instances have served than run for ``PROVISION_TIMEOUT`` on end (a crash
   loop or a quota: more of the same would not help, and the daemon alerts instead).
7. Below the down threshold for ``DOWN_DELAY``, and ``DOWN_DELAY`` since the last change: down by
   ``DOWN_STEP`` (never to 0 while jobs are running; when the source reports the arrival rate,
   never to fewer instances than carry it with ``DOWN_HEADROOM`` to spare at the highest
   per-instance rate seen in band, so that a downscale does not buy the next upscale).
8. Otherwise hold; inside the band the "below since" clock restarts.
"""

from __future__ import annotations

import math
from typing import Any

from autoscaler.config import ProcessSettings
from autoscaler.model import Action, Decision, Instant, Metric, Observation, Reason, Status
from autoscaler.schedule import Schedule

_UP, _DOWN, _HOLD = Action.UP, Action.DOWN, Action.HOLD
#: a downscale must leave each instance at most 1/1.2 of the highest per-instance arrival rate
#: seen with the signal in band (simulated on the shared traces: it removes the down-then-up
#: cycles that fail minutes, at almost no cost)
DOWN_HEADROOM = 1.2
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
        down_delay: float = 300.0,
        scale_from_zero: bool = False,
        schedule: Schedule | None = None,
        provision_timeout: float = 600.0,
    ) -> None:
        if low < 0 or high < max(low, 1):
            raise ValueError(f"bounds {low}..{high} are not valid")
        if not 0 <= down_ms < up_ms:
            raise ValueError(f"down threshold {down_ms} must be below up threshold {up_ms}")
        self.process = process
        self.low = low
        self.high = high
        self.up_ms = up_ms
        self.down_ms = down_ms
        self.up_step = up_step  # 0 means auto
        self.down_step = down_step
        self.up_sensitivity = up_sensitivity
        self.up_cooldown = up_cooldown
        self.down_delay = down_delay
        self.scale_from_zero = scale_from_zero
        self.schedule = schedule
        self.provision_timeout = provision_timeout

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
        "healthy_rate",
        "known",
        "last_change",
        "last_up",
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

    def __repr__(self) -> str:
        return (
            f"PolicyState(known={self.known}, above_since={self.above_since}, "
            f"below_since={self.below_since}, last_up={self.last_up}, "
            f"last_change={self.last_change}, healthy_rate={self.healthy_rate}, "
            f"short_since={self.short_since})"
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
    if rate is not None and status is _OK and sig is not None and sig <= cfg.up_ms and cur > 0:
        per_instance = rate / cur
        if healthy is None or per_instance > healthy:
            healthy = per_instance

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
        elif t - above_since < cfg.up_sensitivity:
            reason = Reason.UP_SENSITIVITY
        elif last_up is not None and t - last_up < cfg.up_cooldown:
            reason = Reason.UP_COOLDOWN
        elif short_since is not None and t - short_since >= cfg.provision_timeout:
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
            action, desired, reason = _UP, min(high, cur + step), Reason.ABOVE_BAND
    elif below_since is not None:
        if cur <= low:
            reason = Reason.AT_MIN
        elif t - below_since < cfg.down_delay or (
            last_change is not None and t - last_change < cfg.down_delay
        ):
            reason = Reason.DOWN_DELAY
        else:
            desired = max(low, cur - cfg.down_step)
            if desired == 0 and ((obs.busy or 0) > 0 or (obs.depth or 0) > 0):
                desired = 1
            if desired == cur:
                reason = Reason.BUSY
            elif (
                rate is not None
                and healthy is not None
                and desired > 0
                and rate * DOWN_HEADROOM > healthy * desired
            ):
                desired = cur
                reason = Reason.HEADROOM
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
    )
