"""The settings ``decide`` reads, flattened into plain numbers for speed."""

from __future__ import annotations

from typing import Any

from autoscaler.config import ProcessSettings
from autoscaler.model import Metric
from autoscaler.schedule import Schedule

#: ``DOWN_DELAY`` when not set (s): one default, whatever the policy has learned
DEFAULT_DOWN_DELAY = 120.0


#: slots that are no constructor argument: the process's name and the derived constants
_NOT_SETTINGS = frozenset({"process", "settle_s", "top_ms"})


class PolicyConfig:
    """One process's settings as ``decide`` reads them (see ``docs/configuration.md``)."""

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
        "settle_s",
        "top_ms",
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
        up_cooldown: float | None = None,
        down_delay: float = DEFAULT_DOWN_DELAY,
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
        if down_delay < 0:
            raise ValueError(f"down delay {down_delay} must not be negative")
        self.process = process
        self.low = low
        self.high = high
        self.up_ms = up_ms
        self.down_ms = down_ms
        self.up_step = up_step  # 0 means auto: sized to the load (or the overload)
        self.down_step = down_step  # the downscale when nothing says what the load needs
        self.up_sensitivity = up_sensitivity
        # every upscale but to MIN and from zero waits this long; ``None`` (``auto``): the
        # learned boot time (``autoscaler.policy.boot``)
        self.up_cooldown = up_cooldown
        self.down_delay = down_delay  # the stabilisation window of downscales
        self.scale_from_zero = scale_from_zero
        self.schedule = schedule
        self.provision_timeout = provision_timeout
        # capacity is kept for the recent mean load plus this many standard deviations
        self.headroom = headroom
        self.window = window  # how far back the signal looks (s)
        # constants of the hot path, derived once (``replace`` derives them anew; the settings
        # above are not changed in place, but for the bounds, which these do not read):
        # a changed formation teaches capacity this long after the change (``boot.settle``
        # plus ``WINDOW``), and the upper half of the band begins here (``top_of_band``)
        from autoscaler.policy import boot, capacity  # (they import this module)

        self.settle_s = boot.unlearned(self) + window
        self.top_ms = capacity.top_of_band(down_ms, up_ms)

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
        values: dict[str, Any] = {
            s: getattr(self, s) for s in self.__slots__ if s not in _NOT_SETTINGS
        }
        values.update(changes)
        return PolicyConfig(self.process, **values)

    def bounds(self, wall: float) -> tuple[int, int]:
        """The bounds in force at ``wall`` (schedule applied)."""
        if self.schedule is None:
            return self.low, self.high
        return self.schedule.bounds(wall, self.low, self.high)
