"""Fixtures: the fake Fly and Railway servers, and settings that point the adapters at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autoscaler.clock import FakeClock
from autoscaler.config import Settings, load
from tests.platforms_fly_railway.fake_fly import FakeFly
from tests.platforms_fly_railway.fake_railway import FakeRailway

#: tokens whose every appearance in an error or a log line is a leak
FLY_CANARY = "FlyV1 fm2_canaryTOKEN-4f1e9b0d7c,fm2_canarySECOND-8a2d"
RAILWAY_CANARY = "rw-canary-3e1c0f4a-9b7d-4d2e-a1f0-6c5b4a3d2e1f"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fly_fake(clock: FakeClock) -> Iterator[FakeFly]:
    with FakeFly(app="demo", token=FLY_CANARY, clock=clock) as fake:
        yield fake


@pytest.fixture
def railway_fake(clock: FakeClock) -> Iterator[FakeRailway]:
    with FakeRailway(token=RAILWAY_CANARY, environment_id="env-prod", clock=clock) as fake:
        fake.add_service("svc-web", {"us-east4-eqdc4a": 2})
        fake.add_service("svc-worker", {"europe-west4-drams3a": 1})
        yield fake


def fly_settings(url: str, **extra: str) -> Settings:
    env = {
        "AUTOSCALER_PLATFORM": "fly",
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "AUTOSCALER_WORKER_MIN": "0",
        "AUTOSCALER_WEB_MAX": "5",
        "AUTOSCALER_WORKER_MAX": "4",
        "FLY_API_TOKEN": FLY_CANARY,
        "FLY_APP_NAME": "demo",
        "FLY_API_URL": url,
        "AUTOSCALER_TICK_TIMEOUT": "0.5s",
    }
    env.update(extra)
    return load(env)


def railway_settings(url: str, **extra: str) -> Settings:
    env = {
        "AUTOSCALER_PLATFORM": "railway",
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "AUTOSCALER_WEB_MAX": "8",
        "AUTOSCALER_WORKER_MAX": "6",
        "AUTOSCALER_WEB_RAILWAY_SERVICE_ID": "svc-web",
        "AUTOSCALER_WORKER_RAILWAY_SERVICE_ID": "svc-worker",
        "RAILWAY_API_TOKEN": RAILWAY_CANARY,
        "RAILWAY_ENVIRONMENT_ID": "env-prod",
        "RAILWAY_API_URL": url + "/graphql/v2",
        "AUTOSCALER_TICK_TIMEOUT": "0.5s",
    }
    env.update(extra)
    return load(env)
