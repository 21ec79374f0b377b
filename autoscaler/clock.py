"""Injected time. The policy reads durations from ``mono`` and schedules from ``wall``."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from autoscaler.model import Instant


class Clock(Protocol):
    def now(self) -> Instant:
        """Monotonic seconds and wall-clock epoch seconds, read together."""
        ...

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clocks."""

    def now(self) -> Instant:
        return Instant(time.monotonic(), time.time())

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock tests move by hand. ``jump_wall`` moves only the wall clock (NTP, DST)."""

    def __init__(self, mono: float = 1000.0, wall: float = 1_767_225_600.0) -> None:
        self.mono = mono
        self.wall = wall
        self._lock = threading.Lock()

    def now(self) -> Instant:
        with self._lock:
            return Instant(self.mono, self.wall)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.mono += seconds
            self.wall += seconds

    def jump_wall(self, seconds: float) -> None:
        with self._lock:
            self.wall += seconds

    def monotonic(self) -> float:
        """The monotonic reading alone, for code that takes a ``time.monotonic``-like callable."""
        return self.now().mono

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class AcceleratedClock:
    """Simulated time running ``speed`` times faster than the real clocks (the ``sim`` app).

    Only durations are accelerated: ``now().mono`` counts simulated seconds, while
    ``now().wall`` stays the real wall clock, so that real job queues polled while the
    formation is simulated still read their true ages.
    """

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._t0) * self.speed

    def now(self) -> Instant:
        return Instant(self.elapsed(), time.time())

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)


_accelerated: dict[float, AcceleratedClock] = {}
_acc_lock = threading.Lock()


def accelerated(speed: float) -> AcceleratedClock:
    """The process-wide accelerated clock for ``speed``: the sim app and the loop share it."""
    with _acc_lock:
        if speed not in _accelerated:
            _accelerated[speed] = AcceleratedClock(speed)
        return _accelerated[speed]
