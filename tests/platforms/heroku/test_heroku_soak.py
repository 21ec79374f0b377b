"""Heroku under an hour of trouble (``tests/platforms/soak.py``): the formation stays within the
bounds, the calls under Heroku's rate limit, and the adapter recovers with the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autoscaler import config
from autoscaler.clock import FakeClock
from autoscaler.platforms import heroku
from tests.platforms.conftest import HEROKU_TOKEN, heroku_env
from tests.platforms.fake_heroku import FakeHeroku
from tests.platforms.soak import CHAOS, TIMEOUT, eager_hour

pytestmark = pytest.mark.slow  # an hour of faults against the fake API


@pytest.fixture
def soak_heroku(clock: FakeClock) -> Iterator[tuple[FakeHeroku, heroku.Heroku]]:
    with FakeHeroku(token=HEROKU_TOKEN, formation={"web": 2, "worker": 1}, clock=clock) as fake:
        settings = config.load(heroku_env(fake.url))
        adapter = heroku.Heroku(heroku.parse(settings), clock=clock, timeout=TIMEOUT)
        fake.chaos(CHAOS, seed=1, delay=2 * TIMEOUT)
        yield fake, adapter
        adapter.close()


@pytest.mark.parametrize("interval", [5.0, 1.0])
def test_an_hour_of_heroku_trouble_stays_in_bounds_and_under_the_rate_limit(
    soak_heroku: tuple[FakeHeroku, heroku.Heroku], clock: FakeClock, interval: float
) -> None:
    fake, adapter = soak_heroku
    processes = ["web", "worker"]

    def quantities() -> dict[str, int]:
        return {p: fake.quantity(p) for p in processes}

    start = clock.now().mono
    outcomes = eager_hour(
        lambda: adapter.read(processes), adapter.scale, quantities, clock, interval
    )
    hours = (clock.now().mono - start) / 3600  # an hour, plus the retries' backoff sleeps
    assert outcomes["scaled"] > 100
    # the chaos reached the error paths (5xx and dropped reads are mostly absorbed by retries)
    assert outcomes["RateLimited"] > 0 and outcomes["WriteUnknown"] > 0, outcomes
    assert {c.fault for c in fake.journal} >= {"429", "500", "503", "slow", "drop"}
    assert len(fake.journal) <= heroku.CALLS_PER_HOUR * hours + heroku.BURST  # far below 4,500
    assert all(c.status != 429 or c.fault == "429" for c in fake.journal)  # the pool never ran dry

    fake.calm()  # the API recovers: the adapter recovers with it
    clock.advance(300)
    expected = {p: f.quantity for p, f in adapter.read(processes).items()}
    adapter.scale({"web": 3, "worker": 3}, expected)
    assert quantities() == {"web": 3, "worker": 3}
