"""Fixtures: the fake platforms on 127.0.0.1 (Heroku, Render, Fly.io, Railway), adapters and
settings pointed at them, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from autoscaler import config
from autoscaler.clock import FakeClock
from autoscaler.config import Settings, load
from autoscaler.platforms import heroku, render
from autoscaler.ports import Platform, PlatformError

from .fake_fly import FakeFly
from .fake_heroku import FakeHeroku
from .fake_railway import FakeRailway
from .fake_render import FakeRender

HEROKU_TOKEN = "canary-heroku-7f3c9a1e-token"
RENDER_KEY = "rnd_canaryRenderKey7f3c9a1e"
TIMEOUT = 0.3  # seconds: the fakes' slow answers take longer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_heroku(clock: FakeClock) -> Iterator[FakeHeroku]:
    with FakeHeroku(token=HEROKU_TOKEN, formation={"web": 2, "worker": 1}, clock=clock) as fake:
        yield fake


@pytest.fixture
def fake_render(clock: FakeClock) -> Iterator[FakeRender]:
    services = {"srv-web0000001": 2, "srv-wrk0000001": 1}
    with FakeRender(api_key=RENDER_KEY, services=services, clock=clock) as fake:
        yield fake


def heroku_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "AUTOSCALER_PLATFORM": "heroku",
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "HEROKU_API_TOKEN": HEROKU_TOKEN,
        "HEROKU_APP_NAME": "my-app",
        "HEROKU_API_URL": url,
        **extra,
    }


def render_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "AUTOSCALER_PLATFORM": "render",
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "RENDER_API_KEY": RENDER_KEY,
        "RENDER_API_URL": url + "/v1",
        "AUTOSCALER_WEB_RENDER_SERVICE_ID": "srv-web0000001",
        "AUTOSCALER_WORKER_RENDER_SERVICE_ID": "srv-wrk0000001",
        **extra,
    }


@pytest.fixture
def heroku_adapter(fake_heroku: FakeHeroku, clock: FakeClock) -> Iterator[heroku.Heroku]:
    settings = config.load(heroku_env(fake_heroku.url))
    adapter = heroku.Heroku(heroku.parse(settings), clock=clock, timeout=TIMEOUT)
    yield adapter
    adapter.close()


@pytest.fixture
def render_adapter(fake_render: FakeRender, clock: FakeClock) -> Iterator[render.Render]:
    settings = config.load(render_env(fake_render.url))
    adapter = render.Render(render.parse(settings), clock=clock, timeout=TIMEOUT)
    yield adapter
    adapter.close()


# ---- Fly.io and Railway ------------------------------------------------------------------------

#: tokens whose every appearance in an error or a log line is a leak
FLY_CANARY = "FlyV1 fm2_canaryTOKEN-4f1e9b0d7c,fm2_canarySECOND-8a2d"
RAILWAY_CANARY = "rw-canary-3e1c0f4a-9b7d-4d2e-a1f0-6c5b4a3d2e1f"


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


def errors_under_faults(
    fake: FakeFly | FakeRailway,
    clock: FakeClock,
    platform: Platform,
    faults: list[Callable[[], object]],
) -> list[str]:
    """Each fault armed on a calm fake, then a read and a scale: the ``str`` and ``repr`` of
    every ``PlatformError`` they raise (the canary tests look for the token in them)."""
    messages: list[str] = []
    for fault in faults:
        fake.calm()
        fault()
        clock.advance(400)
        for call in (
            lambda: platform.read(["web"]),
            lambda: platform.scale({"web": 3}, {"web": 2}),
        ):
            try:
                call()
            except PlatformError as exc:
                messages.append(f"{exc!s} {exc!r}")
    return messages
