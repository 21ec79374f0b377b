"""A simulated hour against a misbehaving API: random 429s, 5xx, slow answers, dropped connections.

The adapter is driven like the loop drives it (read, then scale to a target within the bounds,
every tick) but far more eagerly: it asks for a change on most ticks. Time is a fake clock shared
with the fake server, so an hour takes seconds. What must hold: nothing but the typed platform
errors escapes, the platform's quantities stay within the bounds, and the calls that reach the
API stay within the platform's documented limits.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from autoscaler import config
from autoscaler.clock import FakeClock
from autoscaler.model import Formation
from autoscaler.platforms import heroku, render
from autoscaler.ports import PlatformError

from .conftest import HEROKU_TOKEN, RENDER_KEY, heroku_env, render_env
from .fake_heroku import FakeHeroku
from .fake_render import FakeRender
from .fakeserver import Call

LOW, HIGH = 1, 5
TIMEOUT = 0.05  # seconds; the fake's slow answers take 0.1 s
CHAOS = 0.06  # share of requests that misbehave


def _hour(
    read: Callable[[], dict[str, Formation]],
    scale: Callable[[dict[str, int], dict[str, int]], None],
    quantities: Callable[[], dict[str, int]],
    clock: FakeClock,
    interval: float,
) -> Counter[str]:
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


def _most_in_any_window(calls: list[Call], window: float) -> int:
    times = sorted(c.at for c in calls)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        most = max(most, end - start + 1)
    return most


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
    outcomes = _hour(lambda: adapter.read(processes), adapter.scale, quantities, clock, interval)
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

        outcomes = _hour(lambda: adapter.read(processes), adapter.scale, quantities, clock, 5.0)
        adapter.close()
    assert outcomes["scaled"] > 100
    assert outcomes["RateLimited"] > 0 and outcomes["WriteUnknown"] > 0, outcomes
    assert {c.fault for c in fake.journal} >= {"429", "500", "503", "slow", "drop"}
    assert _most_in_any_window(fake.calls("GET"), 60.0) <= 400
    assert _most_in_any_window(fake.calls("POST"), 60.0) <= 30
    assert all(c.status != 429 or c.fault == "429" for c in fake.journal)  # never limited for real
