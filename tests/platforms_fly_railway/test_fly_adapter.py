"""The Fly adapter against the fake Machines API, over real HTTP (httpx)."""

from __future__ import annotations

import logging

import pytest

from autoscaler.clock import FakeClock
from autoscaler.platforms import fly
from autoscaler.platforms.fly import FlyPlatform, PartialScale
from autoscaler.ports import (
    ConfigError,
    Conflict,
    PlatformError,
    RateLimited,
    Rejected,
    WriteUnknown,
)
from tests.platforms_fly_railway.conftest import FLY_CANARY, fly_settings
from tests.platforms_fly_railway.fake_fly import FakeFly


def adapter(fake: FakeFly, clock: FakeClock, **extra: str) -> FlyPlatform:
    return FlyPlatform(fly.parse(fly_settings(fake.url, **extra)), clock=clock)


@pytest.fixture
def web(fly_fake: FakeFly) -> list[str]:
    """web: 2 started, 3 stopped; worker: 1 started, 1 stopped."""
    started = fly_fake.add("web", n=2)
    stopped = fly_fake.add("web", state="stopped", n=3)
    fly_fake.add("worker")
    fly_fake.add("worker", state="stopped")
    return started + stopped


def posts(fake: FakeFly) -> list[str]:
    return [f"{c.method} {c.path}" for c in fake.writes()]


def test_read_counts_started_machines_per_process_group(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    platform = adapter(fly_fake, clock)
    formation = platform.read(["web", "worker"])
    assert {p: f.quantity for p, f in formation.items()} == {"web": 2, "worker": 1}
    assert [c.method for c in fly_fake.calls()] == ["GET"]


def test_scale_up_starts_the_lowest_stopped_machines_and_nothing_else(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    adapter(fly_fake, clock).scale({"web": 4}, {"web": 2})
    assert posts(fly_fake) == [
        f"POST /v1/apps/demo/machines/{web[2]}/start",
        f"POST /v1/apps/demo/machines/{web[3]}/start",
    ]
    assert fly_fake.started("web") == 4


def test_scale_down_stops_the_highest_machines_and_never_destroys(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    platform = adapter(fly_fake, clock)
    platform.scale({"web": 0, "worker": 0}, {"web": 2, "worker": 1})
    assert fly_fake.started("web") == 0 and fly_fake.started("worker") == 0
    assert fly_fake.total("web") == 5  # every machine is still there, stopped
    assert posts(fly_fake)[:2] == [
        f"POST /v1/apps/demo/machines/{web[1]}/stop",
        f"POST /v1/apps/demo/machines/{web[0]}/stop",
    ]
    assert not fly_fake.calls("DELETE")


def test_a_quantity_changed_by_someone_else_is_a_conflict_and_nothing_is_sent(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    with pytest.raises(Conflict, match="web is 2 \\(expected 3\\)"):
        adapter(fly_fake, clock).scale({"web": 4}, {"web": 3})
    assert posts(fly_fake) == []


def test_too_few_stopped_machines_without_cloning_is_rejected_for_good_with_no_call(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.machines[web[2]]["state"] = fly_fake.machines[web[3]]["state"] = "started"
    fly_fake.machines[web[4]]["state"] = "started"
    with pytest.raises(Rejected, match="AUTOSCALER_FLY_CLONE=true") as info:
        adapter(fly_fake, clock).scale({"worker": 1, "web": 6}, {"worker": 1, "web": 5})
    assert info.value.retryable is False
    assert posts(fly_fake) == []


def test_a_partial_shortfall_starts_what_exists_and_says_how_many_changed(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    with pytest.raises(PartialScale, match="web 2->5 of 7 wanted") as info:
        adapter(fly_fake, clock).scale({"web": 7}, {"web": 2})
    assert info.value.changed == {"web": 3}
    assert isinstance(info.value, WriteUnknown)  # the loop re-reads before deciding again
    assert fly_fake.started("web") == 5


def test_cloning_is_opt_in_pins_the_image_and_stops_at_the_process_max(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    platform = adapter(fly_fake, clock, AUTOSCALER_FLY_CLONE="true", AUTOSCALER_WORKER_MAX="4")
    platform.scale({"worker": 4}, {"worker": 1})
    creates = fly_fake.calls("POST", "/v1/apps/demo/machines")
    creates = [c for c in creates if c.path == "/v1/apps/demo/machines"]
    assert len(creates) == 2  # 1 stopped machine started + 2 clones = 4
    assert (
        creates[0]
        .body["config"]["image"]
        .endswith("@sha256:" + "5b0f8ea3d2c1a9e8f7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4")
    )
    assert creates[0].body["config"]["metadata"]["fly_process_group"] == "worker"
    assert fly_fake.started("worker") == 4 and fly_fake.total("worker") == 4
    with pytest.raises(Rejected, match="AUTOSCALER_WORKER_MAX"):
        platform.scale({"worker": 5}, {"worker": 4})
    assert fly_fake.total("worker") == 4


def test_a_failed_start_ends_the_call_and_counts_what_changed(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.fail(412, path=f"{web[3]}/start")  # e.g. a lease held by a deploy
    with pytest.raises(PartialScale) as info:
        adapter(fly_fake, clock).scale({"web": 5}, {"web": 2})
    assert info.value.changed == {"web": 1}
    assert posts(fly_fake) == [
        f"POST /v1/apps/demo/machines/{web[2]}/start",
        f"POST /v1/apps/demo/machines/{web[3]}/start",
    ]  # the third machine was never tried, the failed one never re-sent


def test_a_429_is_rate_limited_and_holds_that_machine_back_without_a_call(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    platform = adapter(fly_fake, clock)
    fly_fake.fail(429, path="/start", headers={"Retry-After": "4"})
    with pytest.raises(RateLimited) as info:
        platform.scale({"web": 3}, {"web": 2})
    assert info.value.retry_after == 4
    with pytest.raises(RateLimited):
        platform.scale({"web": 3}, {"web": 2})
    assert len(fly_fake.calls("POST")) == 1  # the second try never reached Fly
    clock.advance(5)
    platform.scale({"web": 3}, {"web": 2})
    assert fly_fake.started("web") == 3


def test_a_5xx_on_a_start_is_retried_a_bounded_number_of_times(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.fail(503, path="/start", times=1)
    adapter(fly_fake, clock).scale({"web": 3}, {"web": 2})
    assert len(fly_fake.calls("POST", f"{web[2]}/start")) == 2
    fly_fake.fail(500, path="/start", times=10)
    with pytest.raises(WriteUnknown):
        adapter(fly_fake, clock).scale({"web": 4}, {"web": 3})
    assert len(fly_fake.calls("POST", f"{web[3]}/start")) == 3


def test_a_connection_dropped_after_a_stop_is_unknown_and_not_re_sent(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.drop(apply=True, method="POST")
    with pytest.raises(WriteUnknown):
        adapter(fly_fake, clock).scale({"web": 1}, {"web": 2})
    assert len(fly_fake.calls("POST")) == 1
    assert fly_fake.started("web") == 1  # it did apply: the next read will show it


def test_a_slow_start_times_out_as_unknown(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.slow(1.0, method="POST")  # the adapter's timeout is 0.5s
    with pytest.raises(WriteUnknown, match="may or may not have applied"):
        adapter(fly_fake, clock).scale({"web": 3}, {"web": 2})
    assert len(fly_fake.calls("POST")) == 1


def test_a_dropped_read_is_retried(fly_fake: FakeFly, clock: FakeClock, web: list[str]) -> None:
    fly_fake.drop(method="GET")
    assert adapter(fly_fake, clock).read(["web"])["web"].quantity == 2
    assert len(fly_fake.calls("GET")) == 2


def test_starts_of_one_machine_stay_within_flys_per_machine_limit(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    platform = adapter(fly_fake, clock)
    for _ in range(6):  # up and down as fast as the loop could ask
        platform.scale({"web": 3}, {"web": 2})
        platform.scale({"web": 2}, {"web": 3})
    assert fly_fake.limit_hits == 0
    assert len(fly_fake.calls("POST", f"{web[2]}/start")) == 6


def test_check_reads_only_and_describes_the_groups(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    text = adapter(fly_fake, clock).check(["web", "worker"])
    assert "web 2/5 started" in text and "worker 1/2 started" in text
    assert {c.method for c in fly_fake.calls()} == {"GET"}


def test_check_names_an_unknown_group_a_bad_token_and_an_unknown_app(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        adapter(fly_fake, clock).check(["web", "jobs"])
    assert "jobs" in info.value.problems["AUTOSCALER_PROCESSES"]
    with pytest.raises(ConfigError) as info:
        adapter(fly_fake, clock, FLY_API_TOKEN="wrong-token-123").check(["web"])
    assert set(info.value.problems) == {"FLY_API_TOKEN"}
    with pytest.raises(ConfigError) as info:
        adapter(fly_fake, clock, FLY_APP_NAME="other").check(["web"])
    assert set(info.value.problems) == {"FLY_APP_NAME"}


def test_the_token_never_appears_in_any_error_or_log(
    fly_fake: FakeFly,
    clock: FakeClock,
    web: list[str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    platform = adapter(fly_fake, clock)
    messages: list[str] = []
    faults = [
        lambda: fly_fake.fail(401, times=5),
        lambda: fly_fake.fail(429, times=5),
        lambda: fly_fake.fail(500, times=5),
        lambda: fly_fake.fail(412, times=5),
        lambda: fly_fake.drop(times=5),
        lambda: fly_fake.drop(apply=True, method="POST"),
        lambda: fly_fake.slow(1.0, times=2),
    ]
    for fault in faults:
        fly_fake.calm()
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
    with pytest.raises(ConfigError) as info:
        adapter(fly_fake, clock, FLY_APP_NAME="other").check(["web"])
    messages.append(str(info.value))
    assert len(messages) >= 8
    assert all(c.headers["authorization"] == FLY_CANARY for c in fly_fake.calls())
    seen = "\n".join(messages) + caplog.text + "".join(capsys.readouterr())
    for piece in ("canaryTOKEN", "canarySECOND"):
        assert piece not in seen
