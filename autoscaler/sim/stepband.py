"""The ``step`` baselines' band rule (the hosted latency autoscaler's documented behaviour),
one pure function for the web model's ``StepPolicy`` and the worker model's step policy; and
``Every``, the check cadence of the baselines that look only now and then (``step``, ``hpa``,
``hirefire``).

On each check: above ``up_ms``, +1 at most once every ``up_cooldown`` seconds; below
``down_ms`` for ``down_delay`` seconds and ``down_delay`` seconds after any change, -1; the
clock of when the signal fell below the band is reset as soon as it is not below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Band:
    """The rule's parameters: the formation's bounds, the band (ms) and its two delays (s)."""

    low: int
    high: int
    up_ms: float
    down_ms: float
    up_cooldown: float = 180.0
    down_delay: float = 600.0


class BandClock(NamedTuple):
    """What the rule remembers between checks (simulated seconds)."""

    last_up: float = -math.inf
    last_change: float = -math.inf
    below_since: float | None = None


def step_band(
    band: Band, clock: BandClock, t: float, current: int, signal_ms: float
) -> tuple[int, BandClock]:
    """The quantity wanted at ``t`` and the clock after this check."""
    below_since = clock.below_since
    if signal_ms < band.down_ms:
        if below_since is None:
            below_since = t
    else:
        below_since = None
    if signal_ms > band.up_ms:
        if current < band.high and t - clock.last_up >= band.up_cooldown:
            return current + 1, BandClock(t, t, below_since)
    elif (
        below_since is not None
        and current > band.low
        and t - below_since >= band.down_delay
        and t - clock.last_change >= band.down_delay
    ):
        return current - 1, BandClock(clock.last_up, t, below_since)
    return current, clock._replace(below_since=below_since)


class Every:
    """Checks every ``period`` simulated seconds, the first at 0."""

    __slots__ = ("next_check", "period")

    def __init__(self, period: float) -> None:
        self.period = period
        self.next_check = 0.0

    def due(self, t: float) -> bool:
        """Whether a check falls at ``t`` (a tick's time); if so, the next one is a period on."""
        if t + 1e-9 < self.next_check:
            return False
        self.next_check = t + self.period
        return True


class StepRule:
    """What the web and the worker step baselines hold: the band, how often it is checked, and
    the clock. Each calls ``step_band`` with its own signal."""

    def __init__(
        self,
        low: int,
        high: int,
        *,
        up_ms: float,
        down_ms: float,
        period: float = 10.0,
        up_cooldown: float = 180.0,
        down_delay: float = 600.0,
    ) -> None:
        self.low, self.high = low, high
        self.band = Band(low, high, up_ms, down_ms, up_cooldown, down_delay)
        self.checks = Every(period)
        self.clock = BandClock()
