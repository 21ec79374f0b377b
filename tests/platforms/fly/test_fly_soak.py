"""Fly under an hour of faults (``tests/platforms/soak.py``): the machine count stays within MAX,
no machine is destroyed, and the calls are never refused by Fly's per-action, per-machine
limit."""

from __future__ import annotations

import pytest

from autoscaler.clock import FakeClock
from autoscaler.platforms import fly
from tests.platforms.conftest import FLY_CANARY, fly_settings
from tests.platforms.fake_fly import FakeFly
from tests.platforms.soak import FAULTS, simulate_hour

pytestmark = pytest.mark.slow  # an hour of faults against the fake API


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
