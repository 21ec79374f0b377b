"""The Railway adapter against the fake GraphQL API, over real HTTP (httpx)."""

from __future__ import annotations

import logging

import pytest

from autoscaler.clock import FakeClock
from autoscaler.platforms import railway
from autoscaler.platforms.railway import RailwayPlatform
from autoscaler.ports import (
    ConfigError,
    Conflict,
    RateLimited,
    Rejected,
    WriteUnknown,
)
from tests.platforms.conftest import RAILWAY_CANARY, errors_under_faults, railway_settings
from tests.platforms.fake_railway import FakeRailway


def adapter(fake: FakeRailway, clock: FakeClock, **extra: str) -> RailwayPlatform:
    return RailwayPlatform(railway.parse(railway_settings(fake.url, **extra)), clock=clock)


def test_read_sums_each_services_replicas_in_one_request(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    formation = adapter(railway_fake, clock).read(["web", "worker"])
    assert {p: f.quantity for p, f in formation.items()} == {"web": 2, "worker": 1}
    assert len(railway_fake.calls()) == 1


def test_scale_commits_one_patch_of_the_clis_shape_for_all_processes(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    adapter(railway_fake, clock).scale({"web": 5, "worker": 3}, {"web": 2, "worker": 1})
    (mutation,) = railway_fake.mutations()
    assert "environmentPatchCommit" in mutation.body["query"]
    assert mutation.body["variables"]["patch"] == {
        "services": {
            "svc-web": {"deploy": {"multiRegionConfig": {"us-east4-eqdc4a": {"numReplicas": 5}}}},
            "svc-worker": {
                "deploy": {"multiRegionConfig": {"europe-west4-drams3a": {"numReplicas": 3}}}
            },
        }
    }
    assert mutation.body["variables"]["commitMessage"] == "autoscaler: web 2->5, worker 1->3"
    assert railway_fake.replicas("svc-web") == 5 and railway_fake.replicas("svc-worker") == 3
    assert len(railway_fake.calls()) == 2  # the re-read, then the write


def test_a_target_already_reached_sends_no_patch(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    adapter(railway_fake, clock).scale({"web": 2}, {"web": 2})
    assert railway_fake.mutations() == [] and len(railway_fake.calls()) == 1


def test_scale_down_on_a_multi_region_service_takes_from_the_largest_region(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    railway_fake.add_service("svc-web", {"us-west2": 1, "europe-west4-drams3a": 3})
    adapter(railway_fake, clock).scale({"web": 2}, {"web": 4})
    assert railway_fake.regions("svc-web") == {"us-west2": 1, "europe-west4-drams3a": 1}


def test_a_legacy_single_region_service_scales_in_its_region(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    railway_fake.add_service("svc-worker", {"us-west2": 2}, legacy=True)
    platform = adapter(railway_fake, clock)
    assert platform.read(["worker"])["worker"].quantity == 2
    platform.scale({"worker": 4}, {"worker": 2})
    assert railway_fake.regions("svc-worker") == {"us-west2": 4}


def test_a_rollout_in_progress_reads_as_deploying(clock: FakeClock) -> None:
    with FakeRailway(token=RAILWAY_CANARY, environment_id="env-prod", clock=clock,
                     deploy_delay=30) as fake:  # fmt: skip
        fake.add_service("svc-web", {"us-east4-eqdc4a": 2})
        fake.add_service("svc-worker", {"us-east4-eqdc4a": 1})
        platform = adapter(fake, clock)
        assert platform.read(["web"])["web"].deploying is False
        platform.scale({"web": 3}, {"web": 2})
        form = platform.read(["web"])["web"]
        assert (form.quantity, form.deploying) == (3, True)
        clock.advance(60)
        form = platform.read(["web"])["web"]
        assert (form.quantity, form.deploying) == (3, False)


def test_a_quantity_changed_by_someone_else_is_a_conflict_and_nothing_is_sent(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    with pytest.raises(Conflict, match="web is 2 \\(expected 3\\)"):
        adapter(railway_fake, clock).scale({"web": 4}, {"web": 3})
    assert railway_fake.mutations() == []


def test_errors_with_http_200_are_typed(railway_fake: FakeRailway, clock: FakeClock) -> None:
    platform = adapter(railway_fake, clock)
    railway_fake.graphql_error("Problem processing request", operation="environmentPatchCommit")
    with pytest.raises(Rejected) as info:
        platform.scale({"web": 3}, {"web": 2})
    assert info.value.retryable is True and "Problem processing request" in str(info.value)
    assert railway_fake.replicas("svc-web") == 2
    railway_fake.graphql_error("Not Authorized")
    with pytest.raises(Rejected, match="RAILWAY_API_TOKEN") as info:
        platform.read(["web"])
    assert info.value.retryable is False


def test_a_429_honours_retry_after_without_calling_again(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    platform = adapter(railway_fake, clock)
    railway_fake.fail(429)  # the fake's 429 carries Retry-After: 7, as Backboard's do
    with pytest.raises(RateLimited) as info:
        platform.scale({"web": 3}, {"web": 2})
    assert info.value.retry_after == 7
    with pytest.raises(RateLimited):
        platform.scale({"web": 3}, {"web": 2})
    assert len(railway_fake.calls()) == 1
    clock.advance(8)
    platform.scale({"web": 3}, {"web": 2})
    assert railway_fake.replicas("svc-web") == 3


def test_an_allowance_near_its_end_stops_calls_until_the_reset(clock: FakeClock) -> None:
    with FakeRailway(token=RAILWAY_CANARY, environment_id="env-prod", clock=clock,
                     hourly_limit=21) as fake:  # fmt: skip
        fake.add_service("svc-web", {"us-east4-eqdc4a": 2})
        fake.add_service("svc-worker", {"us-east4-eqdc4a": 1})
        platform = adapter(fake, clock)
        platform.read(["web"])  # Remaining: 20, at the floor: wait for the window's reset
        clock.advance(150)  # the cached formation is too old to serve
        with pytest.raises(RateLimited):
            platform.read(["web"])
        assert len(fake.calls()) == 1
        clock.advance(3600)
        assert platform.read(["web"])["web"].quantity == 2


def test_a_connection_dropped_after_the_mutation_is_unknown_and_not_re_sent(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    railway_fake.faults_only_for("mutation")
    railway_fake.drop(apply=True)
    with pytest.raises(WriteUnknown):
        adapter(railway_fake, clock).scale({"web": 3}, {"web": 2})
    assert len(railway_fake.mutations()) == 1
    assert railway_fake.replicas("svc-web") == 3  # it did apply: the next read shows it


def test_a_slow_mutation_times_out_as_unknown(railway_fake: FakeRailway, clock: FakeClock) -> None:
    railway_fake.faults_only_for("mutation")
    railway_fake.slow(1.0)  # the adapter's timeout is 0.5s
    with pytest.raises(WriteUnknown, match="may or may not have applied"):
        adapter(railway_fake, clock).scale({"web": 3}, {"web": 2})
    assert len(railway_fake.mutations()) == 1


def test_a_dropped_read_is_retried(railway_fake: FakeRailway, clock: FakeClock) -> None:
    railway_fake.drop()
    assert adapter(railway_fake, clock).read(["web"])["web"].quantity == 2
    assert len(railway_fake.calls()) == 2


def test_reads_are_served_from_a_recent_formation_when_the_budget_holds_back(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    platform = adapter(railway_fake, clock)
    for _ in range(200):  # a loop polling far faster than Railway's hourly allowance allows
        platform.read(["web", "worker"])
        clock.advance(0.5)
    assert len(railway_fake.calls()) <= railway.BURST + 100 * railway.BUDGET / 3600 + 1
    platform.scale({"web": 3}, {"web": 2})  # the write reserve is still there
    assert railway_fake.replicas("svc-web") == 3


def test_check_names_the_token_or_the_service_to_fix(
    railway_fake: FakeRailway, clock: FakeClock
) -> None:
    text = adapter(railway_fake, clock).check(["web", "worker"])
    assert "web 2 replica(s)" in text and "worker 1 replica(s)" in text
    assert railway_fake.mutations() == []
    with pytest.raises(ConfigError) as info:
        adapter(railway_fake, clock, AUTOSCALER_WORKER_RAILWAY_SERVICE_ID="svc-nope").check(
            ["web", "worker"]
        )
    assert set(info.value.problems) == {"AUTOSCALER_WORKER_RAILWAY_SERVICE_ID"}
    with pytest.raises(ConfigError) as info:
        adapter(railway_fake, clock, RAILWAY_API_TOKEN="wrong-token-1").check(["web"])
    assert set(info.value.problems) == {"RAILWAY_API_TOKEN"}


def test_the_token_never_appears_in_any_error_or_log(
    railway_fake: FakeRailway,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    platform = adapter(railway_fake, clock)
    faults = [
        lambda: railway_fake.fail(401, times=5),
        lambda: railway_fake.fail(429, times=5),
        lambda: railway_fake.fail(502, times=5),
        lambda: railway_fake.graphql_error(f"bad token {RAILWAY_CANARY}", times=3),
        lambda: railway_fake.drop(times=5),
        lambda: railway_fake.slow(1.0, times=2),
    ]
    messages = errors_under_faults(railway_fake, clock, platform, faults)
    assert len(messages) >= 8
    assert any("[REDACTED]" in m for m in messages)  # the echoed token was masked
    seen = "\n".join(messages) + caplog.text + "".join(capsys.readouterr())
    assert RAILWAY_CANARY not in seen and RAILWAY_CANARY[:18] not in seen
