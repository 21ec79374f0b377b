"""The shared platform HTTP helper: call budget, Retry-After, error bodies (pure, fake clock)."""

from __future__ import annotations

import contextlib
import itertools
import random

import httpx
import pytest

from autoscaler.clock import FakeClock
from autoscaler.platforms._http import CallBudget, Http, error_message, retry_after
from autoscaler.ports import PlatformError, RateLimited, WriteUnknown

from .fake_heroku import ACCEPT, FakeHeroku


def test_a_budget_allows_a_burst_then_paces_at_its_rate() -> None:
    clock = FakeClock()
    budget = CallBudget("t", 60, 60.0, burst=5, clock=clock)  # one a second
    for _ in range(5):
        budget.spend()
    with pytest.raises(RateLimited) as err:
        budget.spend()
    assert err.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    budget.spend()
    assert budget.spent == 6


def test_a_budget_never_exceeds_burst_plus_rate_over_any_span() -> None:
    clock = FakeClock()
    budget = CallBudget("t", 1200, 3600.0, burst=40, clock=clock)
    for _ in range(36_000):  # one attempt every 0.1 s for an hour
        with contextlib.suppress(RateLimited):
            budget.spend()
        clock.advance(0.1)
    assert 1200 <= budget.spent <= 1240


def test_reads_leave_the_reserve_to_writes() -> None:
    clock = FakeClock()
    budget = CallBudget("t", 60, 60.0, burst=4, reserve=2, clock=clock)
    budget.spend()
    budget.spend()
    with pytest.raises(RateLimited):
        budget.spend()
    budget.spend(priority=True)
    budget.spend(priority=True)
    with pytest.raises(RateLimited):
        budget.spend(priority=True)


def test_a_block_stops_every_call_until_it_ends() -> None:
    clock = FakeClock()
    budget = CallBudget("t", 60, 60.0, burst=4, clock=clock)
    budget.block(30.0)
    assert budget.wait(priority=True) == pytest.approx(30.0)
    clock.advance(30.0)
    budget.spend(priority=True)


def test_a_budget_needs_room_above_its_reserve() -> None:
    with pytest.raises(ValueError):
        CallBudget("t", 60, 60.0, burst=2, reserve=2)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"Retry-After": "-3"}, 0.0),
        (
            {
                "Retry-After": "Fri, 27 Nov 2026 01:00:30 GMT",
                "Date": "Fri, 27 Nov 2026 01:00:00 GMT",
            },
            30.0,
        ),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(httpx.Response(429, headers=headers)) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(422, json={"id": "x", "message": "Cannot run more"}), "Cannot run more"),
        (httpx.Response(404, json={"error": "machine not found"}), "machine not found"),
        (httpx.Response(200, json={"errors": [{"message": "Not Authorized"}]}), "Not Authorized"),
        (httpx.Response(502, text="<html>\nBad gateway</html>"), "<html> Bad gateway</html>"),
        (httpx.Response(503, text=""), "Service Unavailable"),
        (httpx.Response(401, json={"message": "bad Bearer abcdef123456"}), "bad Bearer [REDACTED]"),
    ],
)
def test_error_message(response: httpx.Response, expected: str) -> None:
    assert error_message(response) == expected


# -- over HTTP, against the fake Heroku (any fake server would do) --------------------------------


def _http(fake: FakeHeroku, clock: FakeClock, burst: int) -> Http:
    headers = {"Accept": ACCEPT, "Authorization": f"Bearer {fake.token}"}
    budget = CallBudget("t", 60, 60.0, burst=burst, clock=clock)
    return Http("t", fake.url, headers, budget=budget, timeout=0.3, clock=clock)


def test_a_write_whose_retry_is_rate_limited_is_still_write_unknown(
    fake_heroku: FakeHeroku, clock: FakeClock
) -> None:
    http = _http(fake_heroku, clock, burst=5)
    fake_heroku.fail(500, method="PATCH")
    fake_heroku.fail(429, method="PATCH")
    with pytest.raises(WriteUnknown, match=r"rate limited.*may or may not have applied"):
        http.request("PATCH", "/apps/my-app/formation", json={"updates": []}, write=True)
    assert [c.status for c in fake_heroku.journal] == [500, 429]
    http.close()


def test_no_retry_is_sent_without_budget_for_it(fake_heroku: FakeHeroku, clock: FakeClock) -> None:
    http = _http(fake_heroku, clock, burst=1)
    fake_heroku.fail(500, method="PATCH")
    with pytest.raises(WriteUnknown):
        http.request("PATCH", "/apps/my-app/formation", json={"updates": []}, write=True)
    fake_heroku.fail(503, method="GET")
    clock.advance(1.0)
    with pytest.raises(PlatformError, match="503") as err:
        http.request("GET", "/apps/my-app/formation")
    assert not isinstance(err.value, WriteUnknown)
    assert [c.status for c in fake_heroku.journal] == [500, 503]
    http.close()


@pytest.mark.parametrize(
    ("failures", "retries", "outcome"),
    [
        (0, 2, 200),  # no retry, no wait
        (1, 2, 200),  # one retry after backoff x [0.5, 1)
        (2, 2, 200),  # two, the second twice as long
        (3, 2, "503"),  # out of retries: the last problem, as a PlatformError
        (1, 0, "503"),  # retries off (Fly's machine creation)
    ],
)
def test_a_failed_call_is_retried_with_jittered_exponential_backoff(
    failures: int, retries: int, outcome: int | str
) -> None:
    answers = [httpx.Response(503, text="busy")] * failures + [httpx.Response(200, json={})]
    sent: list[float] = []
    clock = FakeClock()

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now().mono)
        return answers[len(sent) - 1]

    budget = CallBudget("t", 600, 60.0, burst=10, clock=clock)
    http = Http(
        "t",
        "http://platform.test",
        {},
        budget=budget,
        retries=retries,
        backoff=0.5,
        clock=clock,
        transport=httpx.MockTransport(answer),
        rng=random.Random(3),
    )
    if outcome == 200:
        assert http.request("GET", "/x").status_code == 200
    else:
        with pytest.raises(PlatformError, match=str(outcome)) as err:
            http.request("GET", "/x")
        assert not isinstance(err.value, WriteUnknown)
    http.close()
    assert len(sent) == min(failures, retries) + 1
    jitter = random.Random(3)
    waits = [0.5 * 2**k * jitter.uniform(0.5, 1.0) for k in range(len(sent) - 1)]
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx(waits)
