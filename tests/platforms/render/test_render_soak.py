"""Render under an hour of trouble (``tests/platforms/soak.py``): the instances stay within the
bounds and the reads and writes under Render's per-minute limits."""

from __future__ import annotations

import pytest

from autoscaler import config
from autoscaler.clock import FakeClock
from autoscaler.platforms import render
from tests.platforms.conftest import RENDER_KEY, render_env
from tests.platforms.fake_render import FakeRender
from tests.platforms.soak import CHAOS, TIMEOUT, eager_hour, most_in_any_window

pytestmark = pytest.mark.slow  # an hour of faults against the fake API


def test_an_hour_of_render_trouble_stays_in_bounds_and_under_the_rate_limits(
    clock: FakeClock,
) -> None:
    services = {"srv-web0000001": 2, "srv-wrk0000001": 1}
    with FakeRender(api_key=RENDER_KEY, services=services, clock=clock) as fake:
        adapter = render.Render(
            render.parse(config.load(render_env(fake.url))), clock=clock, timeout=TIMEOUT
        )
        fake.chaos(CHAOS, seed=2, delay=2 * TIMEOUT)
        processes = ["web", "worker"]

        def quantities() -> dict[str, int]:
            return {p: fake.instances(s) for p, s in adapter.config.services.items()}

        outcomes = eager_hour(
            lambda: adapter.read(processes), adapter.scale, quantities, clock, 5.0
        )
        adapter.close()
    assert outcomes["scaled"] > 100
    assert outcomes["RateLimited"] > 0 and outcomes["WriteUnknown"] > 0, outcomes
    assert {c.fault for c in fake.journal} >= {"429", "500", "503", "slow", "drop"}
    assert most_in_any_window(fake.calls("GET"), 60.0) <= 400
    assert most_in_any_window(fake.calls("POST"), 60.0) <= 30
    assert all(c.status != 429 or c.fault == "429" for c in fake.journal)  # never limited for real
