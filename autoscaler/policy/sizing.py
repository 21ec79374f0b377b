"""How many instances: the upscale, the forecast, the downscale and its stabilisation window.

Pure functions of plain numbers; the ladder (``autoscaler.policy.ladder``) picks which one
sizes a decision, and its reason names it.
"""

from __future__ import annotations

import math

from autoscaler.policy.state import Window

#: the per-tick limit of an upscale: at most this many times the current instances (an upscale
#: from 2 goes to 20 at most), so that one bad reading cannot buy the whole ``MAX``
UP_LIMIT = 10


def instances_for(load: float, capacity: float) -> int:
    """The fewest instances that carry ``load`` at ``capacity`` each."""
    return math.ceil(load / capacity - 1e-9)


def up_limit(current: int, high: int) -> int:
    """The most an upscale from ``current`` may ask for this tick."""
    most = UP_LIMIT * current if current > 0 else 1
    return most if most < high else high


def for_load_and_backlog(
    rate: float, signal_ms: float, current: int, capacity: float, drain_s: float
) -> int:
    """Instances for the arrival rate plus draining the backlog within ``drain_s``. What is
    queued is about the wait (the signal's high percentile: it errs on the side of more) times
    the rate at which the instances serve it (at most the arrival rate, at most what the
    current ones carry)."""
    serving = current * capacity
    serving = min(serving, rate)
    return instances_for(rate + serving * signal_ms / (1000.0 * drain_s), capacity)


def for_overload(current: int, signal_ms: float, up_ms: float) -> int:
    """Without a rate or what an instance carries: in proportion to the overload, at least one
    more, at most doubling (queue time is not proportional to the load: it grows while the
    instances are short)."""
    if current <= 0:
        return 1
    step = math.ceil(current * (signal_ms / up_ms - 1.0))
    if step < 1:
        return current + 1
    return current + (step if step < current else current)


def auto_step(current: int, signal_ms: float, up_ms: float) -> int:
    """Instances to add for an overload of ``signal_ms`` against ``up_ms`` (``for_overload``)."""
    return for_overload(current, signal_ms, up_ms) - current


def push(window: Window, t: float, quantity: int, by_load: bool, span: float) -> Window:
    """``window`` with the recommendation ``quantity`` at ``t`` added and those older than
    ``span`` dropped. Kept as a falling staircase (a recommendation hides every earlier one it
    equals or exceeds), so the first entry is the highest of the span."""
    if window and window[-1][1] == quantity and t - window[0][0] < span:
        # the same recommendation again (the common case): only its time moves on
        return (*window[:-1], (t, quantity, by_load))
    keep = [e for e in window if e[1] > quantity and t - e[0] < span]
    keep.append((t, quantity, by_load))
    return tuple(keep)


def highest(window: Window) -> tuple[int, bool]:
    """The highest recommendation in the window, and whether the load sized it."""
    _, quantity, by_load = window[0]
    return quantity, by_load
