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
    RateLimited,
    Rejected,
    WriteUnknown,
)
from tests.platforms.conftest import FLY_CANARY, errors_under_faults, fly_settings
from tests.platforms.fake_fly import FakeFly


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
    """The machine changes sent (lease calls left out)."""
    return [f"{c.method} {c.path}" for c in fake.writes() if not c.path.endswith("/lease")]


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
    assert posts(fly_fake) == [c for c in posts(fly_fake) if c.startswith("POST")]  # no DELETE


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
    assert len(fly_fake.calls("POST", "/start")) == 1  # the second try never reached Fly
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
    fly_fake.drop(apply=True, method="POST", path="/stop")
    with pytest.raises(WriteUnknown):
        adapter(fly_fake, clock).scale({"web": 1}, {"web": 2})
    assert len(fly_fake.calls("POST", "/stop")) == 1
    assert fly_fake.started("web") == 1  # it did apply: the next read will show it


def test_a_slow_start_times_out_as_unknown(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.slow(1.0, method="POST", path="/start")  # the adapter's timeout is 0.5s
    with pytest.raises(WriteUnknown, match="may or may not have applied"):
        adapter(fly_fake, clock).scale({"web": 3}, {"web": 2})
    assert len(fly_fake.calls("POST", "/start")) == 1


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
    faults = [
        lambda: fly_fake.fail(401, times=5),
        lambda: fly_fake.fail(429, times=5),
        lambda: fly_fake.fail(500, times=5),
        lambda: fly_fake.fail(412, times=5),
        lambda: fly_fake.drop(times=5),
        lambda: fly_fake.drop(apply=True, method="POST"),
        lambda: fly_fake.slow(1.0, times=2),
    ]
    messages = errors_under_faults(fly_fake, clock, platform, faults)
    with pytest.raises(ConfigError) as info:
        adapter(fly_fake, clock, FLY_APP_NAME="other").check(["web"])
    messages.append(str(info.value))
    assert len(messages) >= 8
    assert all(c.headers["authorization"] == FLY_CANARY for c in fly_fake.calls())
    seen = "\n".join(messages) + caplog.text + "".join(capsys.readouterr())
    for piece in ("canaryTOKEN", "canarySECOND"):
        assert piece not in seen


# -- leases, standbys, process groups, clones (issue 14 items 3-5) ----------------------------


def test_every_start_and_stop_is_made_under_a_lease_and_the_lease_is_given_back(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    platform = adapter(fly_fake, clock)
    platform.scale({"web": 3}, {"web": 2})
    platform.scale({"web": 2}, {"web": 3})
    calls = [c for c in fly_fake.writes() if f"/{web[2]}/" in c.path]
    assert [f"{c.method} {c.path.rsplit('/', 1)[-1]}" for c in calls] == [
        "POST lease", "POST start", "DELETE lease", "POST lease", "POST stop", "DELETE lease",
    ]  # fmt: skip
    for taken, action, given in (calls[0:3], calls[3:6]):
        nonce = taken.reply["data"]["nonce"]
        assert taken.body["ttl"] > 0
        assert action.headers["fly-machine-lease-nonce"] == nonce
        assert given.headers["fly-machine-lease-nonce"] == nonce and given.status == 200
    assert fly_fake.leases == {} and fly_fake.lease_conflicts == 0


def test_a_machine_leased_by_a_deploy_is_left_alone_and_the_refusal_says_why(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.hold_lease(web[2])  # a deploy is updating the first stopped machine
    with pytest.raises(Rejected, match="leased by a deploy or another client") as info:
        adapter(fly_fake, clock).scale({"web": 3}, {"web": 2})
    assert info.value.retryable is True  # the next tick tries again
    assert "409" in str(info.value) and "lease currently held by" in str(info.value)
    assert posts(fly_fake) == []  # no start was sent, the deploy's lease was not touched
    assert fly_fake.leases[web[2]].owner == "deploy@example.com"
    assert fly_fake.started("web") == 2


def test_a_machine_changed_since_it_was_listed_is_not_started(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    platform = adapter(fly_fake, clock)
    listed = {m.id: m for m in platform.machines()}
    fly_fake.deploy(web[2])  # a new instance_id: the lease's version no longer matches
    with pytest.raises(Rejected, match="changed since it was listed") as info:
        platform._act("start", listed[web[2]])
    assert info.value.retryable is True
    assert posts(fly_fake) == [] and fly_fake.leases == {}  # lease taken and given back


def test_an_action_answered_409_is_reported_as_a_held_lease_not_a_generic_error(
    fly_fake: FakeFly, clock: FakeClock, web: list[str]
) -> None:
    fly_fake.fail(409, path=f"{web[2]}/start")
    with pytest.raises(Rejected, match="leased by a deploy or another client") as info:
        adapter(fly_fake, clock).scale({"web": 3}, {"web": 2})
    assert info.value.retryable is True
    assert fly_fake.leases == {}  # our own lease was released after the refusal


def test_standbys_are_never_counted_or_started_as_capacity(
    fly_fake: FakeFly, clock: FakeClock
) -> None:
    (primary,) = fly_fake.add("worker")
    fly_fake.add("worker", state="stopped", standby_for=primary)
    platform = adapter(fly_fake, clock)
    assert platform.read(["worker"])["worker"].quantity == 1
    assert "worker 1/1 started (+1 standby, not counted)" in platform.check(["worker"])
    with pytest.raises(Rejected, match="no stopped one left"):
        platform.scale({"worker": 2}, {"worker": 1})
    assert posts(fly_fake) == []  # the standby was not started
    (standby,) = [m for m in fly_fake.machines if m != primary]
    fly_fake.machines[standby]["state"] = "started"  # Fly started it: the primary's host failed
    assert platform.read(["worker"])["worker"].quantity == 1
    platform.scale({"worker": 0}, {"worker": 1})
    assert fly_fake.machines[standby]["state"] == "started"  # never stopped by us either


def test_a_machine_without_a_process_group_belongs_to_no_process(
    fly_fake: FakeFly, clock: FakeClock
) -> None:
    fly_fake.add(None, state="stopped")  # neither fly_process_group nor process_group
    fly_fake.add("web", legacy_group=True)  # the legacy key still names its group
    platform = FlyPlatform(
        fly.parse(
            fly_settings(
                fly_fake.url, AUTOSCALER_PROCESSES="app,web,worker", AUTOSCALER_APP_SOURCE="rq"
            )
        ),
        clock=clock,
    )
    assert {p: f.quantity for p, f in platform.read(["app", "web"]).items()} == {
        "app": 0,
        "web": 1,
    }
    with pytest.raises(ConfigError, match=r"no machine in process group\(s\) app"):
        platform.check(["app", "web"])
    with pytest.raises(Rejected, match="app: 1 more machine"):
        platform.scale({"app": 1}, {"app": 0})
    assert posts(fly_fake) == []


def test_a_clone_drops_standby_settings_like_fly_scale_count(
    fly_fake: FakeFly, clock: FakeClock
) -> None:
    (primary,) = fly_fake.add("worker")
    config = fly_fake.machines[primary]["config"]
    config["standbys"] = []  # an empty list, as some machines carry
    config["env"] = {"FLY_STANDBY_FOR": "", "QUEUE": "default"}
    platform = adapter(fly_fake, clock, AUTOSCALER_FLY_CLONE="true")
    platform.scale({"worker": 2}, {"worker": 1})
    (create,) = [c for c in fly_fake.calls("POST") if c.path == "/v1/apps/demo/machines"]
    assert "standbys" not in create.body["config"]
    assert create.body["config"]["env"] == {"QUEUE": "default"}
    assert fly_fake.started("worker") == 2


def test_a_group_with_volumes_is_never_cloned_and_the_refusal_says_why(
    fly_fake: FakeFly, clock: FakeClock
) -> None:
    fly_fake.add("worker", volume="vol_worker1")
    platform = adapter(fly_fake, clock, AUTOSCALER_FLY_CLONE="true")
    with pytest.raises(Rejected, match="mount a volume") as info:
        platform.scale({"worker": 2}, {"worker": 1})
    assert info.value.retryable is False
    assert "fly scale count worker=N" in str(info.value)
    assert [c for c in fly_fake.calls("POST") if c.path == "/v1/apps/demo/machines"] == []
    assert fly_fake.total("worker") == 1
