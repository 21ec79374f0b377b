"""A simulated hour of random 429s, 5xx, slow answers and dropped connections against a
platform's fake API, shared by each platform's soak test (``<platform>/test_<platform>_soak.py``).

The adapter and the fake share a fake clock, so an hour of ticks runs in seconds of wall time
(slow answers still cost real time: the adapter's timeout is short). Each tick reads the
formation and asks for a quantity within the bounds, as the loop would, but far more eagerly.
What must hold: nothing but a ``PlatformError`` ever escapes, the platform's quantities stay
within the bounds, and the calls that reach the API stay within the platform's documented
limits.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from autoscaler.clock import FakeClock
from autoscaler.model import Formation
from autoscaler.ports import Platform, PlatformError
from tests.platforms.fakeserver import Call

HOUR = 3600.0
#: the faults of the Fly and Railway soaks
FAULTS = ("429", "429", "500", "502", "503", "drop", "drop", "slow")
#: the bounds, the adapter's timeout and the share of requests that misbehave in the Heroku and
#: Render soaks (the fake's slow answers take twice the timeout)
LOW, HIGH = 1, 5
TIMEOUT = 0.05
CHAOS = 0.06


def simulate_hour(
    platform: Platform,
    clock: FakeClock,
    bounds: dict[str, tuple[int, int]],
    observed: Callable[[str], int],
    *,
    interval: float,
    seed: int,
) -> dict[str, int]:
    """Run ticks for one simulated hour; return how many reads, writes and errors there were."""
    rng = random.Random(seed)
    counts = {"ticks": 0, "writes": 0, "errors": 0}
    end = clock.now().mono + HOUR
    while clock.now().mono < end:
        counts["ticks"] += 1
        try:
            formation = platform.read(list(bounds))
            targets, expected = {}, {}
            for process, (low, high) in bounds.items():
                current = formation[process].quantity
                wanted = min(high, max(low, current + rng.choice((-2, -1, 0, 0, 1, 2))))
                if wanted != current:
                    targets[process], expected[process] = wanted, current
            if targets:
                counts["writes"] += 1
                platform.scale(targets, expected)
        except PlatformError:
            counts["errors"] += 1
        for process, (low, high) in bounds.items():
            assert low <= observed(process) <= high, (process, observed(process))
        clock.advance(interval)
    return counts


def eager_hour(
    read: Callable[[], dict[str, Formation]],
    scale: Callable[[dict[str, int], dict[str, int]], None],
    quantities: Callable[[], dict[str, int]],
    clock: FakeClock,
    interval: float,
) -> Counter[str]:
    """Tick for an hour, asking for a random quantity in ``LOW..HIGH`` per process every tick;
    how many ticks scaled, and how many raised each kind of ``PlatformError``."""
    rng = random.Random(7)
    outcomes: Counter[str] = Counter()
    for _ in range(int(3600 / interval)):
        clock.advance(interval)
        try:
            formation = read()
            expected = {p: f.quantity for p, f in formation.items()}
            scale({p: rng.randint(LOW, HIGH) for p in expected}, expected)
            outcomes["scaled"] += 1
        except PlatformError as exc:
            outcomes[type(exc).__name__] += 1
        assert all(LOW <= q <= HIGH for q in quantities().values()), quantities()
    return outcomes


def most_in_any_window(calls: list[Call], window: float) -> int:
    times = sorted(c.at for c in calls)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        most = max(most, end - start + 1)
    return most
