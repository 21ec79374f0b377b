"""A simulated hour of random 429s, 5xx, slow answers and dropped connections per platform.

The adapter and the fake share a fake clock, so an hour of ticks runs in seconds of wall time
(slow answers still cost real time: the adapter's timeout is 0.1s). Each tick reads the
formation and asks for a random quantity within the bounds, as the loop would. What must hold:
nothing but a ``PlatformError`` ever escapes, the platform's quantities stay within the bounds
(and Fly's machine count within MAX, no machine destroyed), and the calls stay within the
platform's documented limits (Fly: never refused by the per-action, per-machine limit;
Railway: at most its 1,000 calls an hour).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from autoscaler.clock import FakeClock
from autoscaler.platforms import fly, railway
from autoscaler.ports import Platform, PlatformError
from tests.platforms.conftest import (
    FLY_CANARY,
    RAILWAY_CANARY,
    fly_settings,
    railway_settings,
)
from tests.platforms.fake_fly import FakeFly
from tests.platforms.fake_railway import FakeRailway

HOUR = 3600.0
FAULTS = ("429", "429", "500", "502", "503", "drop", "drop", "slow")


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


@pytest.mark.parametrize("seed", [1])
def test_fly_survives_an_hour_of_faults_within_bounds_and_limits(seed: int) -> None:
    clock = FakeClock()
    with FakeFly(app="demo", token=FLY_CANARY, clock=clock, boot_delay=2.0) as fake:
        fake.add("web", n=2)
        fake.add("web", state="stopped")
        fake.add("worker", state="stopped", n=2)
        settings = fly_settings(
            fake.url,
            AUTOSCALER_TICK_TIMEOUT="0.1s",
            AUTOSCALER_FLY_CLONE="true",
            AUTOSCALER_WEB_MIN="1",
            AUTOSCALER_WEB_MAX="6",
        )
        platform = fly.FlyPlatform(fly.parse(settings), clock=clock)
        fake.chaos(0.12, seed=seed, kinds=FAULTS, delay=0.15)
        counts = simulate_hour(platform, clock, {"web": (1, 6), "worker": (0, 4)},
                               fake.started, interval=8.0, seed=seed)  # fmt: skip
        platform.close()
    assert counts["ticks"] >= 400 and counts["writes"] >= 100 and counts["errors"] >= 10
    assert fake.total("web") <= 6 and fake.total("worker") <= 4  # clones never pass MAX
    destroys = [c for c in fake.calls("DELETE") if not c.path.endswith("/lease")]
    assert not destroys  # nothing destroyed, the last machine least of all
    assert fake.limit_hits == 0  # never over Fly's per-action, per-machine limit
    faults = {c.fault for c in fake.journal if c.fault}
    assert {"429", "500", "slow", "drop"} <= {f.split("+")[0] for f in faults}


@pytest.mark.parametrize("interval", [5.0, 1.0])
def test_railway_survives_an_hour_of_faults_within_bounds_and_its_hourly_allowance(
    interval: float,
) -> None:
    clock = FakeClock()
    with FakeRailway(token=RAILWAY_CANARY, environment_id="env-prod", clock=clock,
                     deploy_delay=20.0) as fake:  # fmt: skip
        fake.add_service("svc-web", {"us-east4-eqdc4a": 2})
        fake.add_service("svc-worker", {"us-east4-eqdc4a": 1, "europe-west4-drams3a": 1})
        settings = railway_settings(fake.url, AUTOSCALER_TICK_TIMEOUT="0.1s")
        platform = railway.RailwayPlatform(railway.parse(settings), clock=clock)
        fake.chaos(0.12, seed=int(interval), kinds=FAULTS, delay=0.15)
        ids = {"web": "svc-web", "worker": "svc-worker"}
        counts = simulate_hour(platform, clock, {"web": (1, 8), "worker": (1, 6)},
                               lambda p: fake.replicas(ids[p]), interval=interval,
                               seed=int(interval))  # fmt: skip
        platform.close()
    assert counts["writes"] >= 50 and counts["errors"] >= 10
    assert fake.over_limit == 0
    assert len(fake.journal) <= railway.HOURLY_LIMIT
    assert len(fake.commits) >= 40  # it still scaled, within the allowance
