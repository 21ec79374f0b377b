"""Railway under an hour of faults (``tests/platforms/soak.py``): the replicas stay within the
bounds and the calls within Railway's hourly allowance."""

from __future__ import annotations

import pytest

from autoscaler.clock import FakeClock
from autoscaler.platforms import railway
from tests.platforms.conftest import RAILWAY_CANARY, railway_settings
from tests.platforms.fake_railway import FakeRailway
from tests.platforms.soak import FAULTS, simulate_hour

pytestmark = pytest.mark.slow  # an hour of faults against the fake API


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
