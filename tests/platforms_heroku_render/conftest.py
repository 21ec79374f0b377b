"""Fixtures: the fake platforms on 127.0.0.1, and adapters pointed at them on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autoscaler import config
from autoscaler.clock import FakeClock
from autoscaler.platforms import heroku, render

from .fake_heroku import FakeHeroku
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
