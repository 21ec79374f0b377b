"""End to end, per platform: the daemon's own tick (``autoscaler once``, as ``run`` wires it:
config from the environment, the registry, the lock, the dry-run wrapper), a real RQ queue on the
real Redis (database 7) as the worker signal, and the fake platform over HTTP. A burst of jobs
leads to exactly the expected API calls; with ``AUTOSCALER_DRY_RUN=true``, to none that writes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from rq import Queue

from autoscaler import cli
from tests.platforms.conftest import FLY_CANARY, RAILWAY_CANARY
from tests.platforms.fake_fly import FakeFly
from tests.platforms.fake_railway import FakeRailway

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/7"  # this area's database

WORKER = {
    "AUTOSCALER_PROCESSES": "worker",
    "AUTOSCALER_WORKER_SOURCE": "rq",
    "AUTOSCALER_WORKER_QUEUES": "default",
    "AUTOSCALER_WORKER_MIN": "1",
    "AUTOSCALER_WORKER_MAX": "4",
    "AUTOSCALER_WORKER_UP_THRESHOLD": "200ms",
    "AUTOSCALER_WORKER_DOWN_THRESHOLD": "50ms",
    "AUTOSCALER_WORKER_UP_STEP": "2",
    "AUTOSCALER_LOCK": "redis",
    "REDIS_URL": REDIS_URL,
}


@pytest.fixture
def burst() -> Iterator[None]:
    """30 RQ jobs waiting for ~0.5 s: the oldest is well above the 200 ms threshold."""
    conn = redis.Redis.from_url(REDIS_URL)
    conn.flushdb()
    queue = Queue("default", connection=conn)
    for i in range(30):
        queue.enqueue("builtins.len", [i])
    time.sleep(0.5)
    yield
    conn.flushdb()
    conn.close()


def once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         env: dict[str, str]) -> dict:  # fmt: skip
    for name, value in (WORKER | env).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = cli.main(["once", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def fly_app() -> Iterator[FakeFly]:
    with FakeFly(app="demo", token=FLY_CANARY) as fake:
        fake.add("worker")
        fake.add("worker", state="stopped", n=3)
        fake.add("web", state="stopped")
        yield fake


def fly_env(fake: FakeFly, **extra: str) -> dict[str, str]:
    return {"AUTOSCALER_PLATFORM": "fly", "FLY_API_TOKEN": FLY_CANARY, "FLY_APP_NAME": "demo",
            "FLY_API_URL": fake.url, **extra}  # fmt: skip


def test_fly_a_burst_of_jobs_starts_exactly_two_stopped_workers(
    fly_app: FakeFly, burst: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    stopped = sorted(m["id"] for m in fly_app.machines.values()
                     if m["state"] == "stopped" and m["config"]["metadata"]["fly_process_group"]
                     == "worker")  # fmt: skip
    result = once(monkeypatch, capsys, fly_env(fly_app))
    (decision,) = result["decisions"]
    assert (decision["action"], decision["current"], decision["desired"]) == ("up", 1, 3)
    assert result["writes"] == {"worker": 3}
    assert (
        [f"{c.method} {c.path}" for c in fly_app.calls()]
        == [
            "GET /v1/apps/demo/machines",  # the tick's read
            "GET /v1/apps/demo/machines",  # the re-read before writing
            *(
                f"{verb} /v1/apps/demo/machines/{machine}/{what}"
                for machine in stopped[:2]
                for verb, what in (("POST", "lease"), ("POST", "start"), ("DELETE", "lease"))
            ),
        ]
    )
    assert fly_app.leases == {}  # every lease taken was given back
    assert fly_app.started("worker") == 3


def test_fly_dry_run_sends_no_write(
    fly_app: FakeFly, burst: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    result = once(monkeypatch, capsys, fly_env(fly_app, AUTOSCALER_DRY_RUN="true"))
    assert result["decisions"][0]["desired"] == 3 and result["dry_run"] is True
    assert fly_app.writes() == []
    assert fly_app.started("worker") == 1


@pytest.fixture
def railway_app() -> Iterator[FakeRailway]:
    with FakeRailway(token=RAILWAY_CANARY, environment_id="env-prod") as fake:
        fake.add_service("svc-worker", {"us-east4-eqdc4a": 1})
        yield fake


def railway_env(fake: FakeRailway, **extra: str) -> dict[str, str]:
    return {"AUTOSCALER_PLATFORM": "railway", "RAILWAY_API_TOKEN": RAILWAY_CANARY,
            "RAILWAY_ENVIRONMENT_ID": "env-prod", "RAILWAY_API_URL": fake.url + "/graphql/v2",
            "AUTOSCALER_WORKER_RAILWAY_SERVICE_ID": "svc-worker", **extra}  # fmt: skip


def test_railway_a_burst_of_jobs_commits_exactly_one_patch_to_three_replicas(
    railway_app: FakeRailway, burst: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    result = once(monkeypatch, capsys, railway_env(railway_app))
    (decision,) = result["decisions"]
    assert (decision["action"], decision["current"], decision["desired"]) == ("up", 1, 3)
    calls = railway_app.calls()
    assert len(calls) == 3  # the tick's read, the re-read, the mutation
    (mutation,) = railway_app.mutations()
    assert mutation is calls[-1]
    assert mutation.body["variables"]["patch"] == {"services": {"svc-worker": {"deploy": {
        "multiRegionConfig": {"us-east4-eqdc4a": {"numReplicas": 3}}}}}}  # fmt: skip
    assert railway_app.replicas("svc-worker") == 3


def test_railway_dry_run_sends_no_mutation(
    railway_app: FakeRailway, burst: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    result = once(monkeypatch, capsys, railway_env(railway_app, AUTOSCALER_DRY_RUN="true"))
    assert result["decisions"][0]["desired"] == 3
    assert railway_app.mutations() == [] and len(railway_app.calls()) == 1
    assert railway_app.replicas("svc-worker") == 1


@pytest.mark.parametrize("platform", ["fly", "railway"])
def test_check_proves_access_without_writing(
    platform: str, fly_app: FakeFly, railway_app: FakeRailway, burst: None,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    env = fly_env(fly_app) if platform == "fly" else railway_env(railway_app)
    for name, value in (WORKER | env).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["check"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert f"platform {platform}: " in out and "FAILED" not in out
    assert fly_app.writes() == [] and railway_app.mutations() == []
    assert FLY_CANARY not in out and RAILWAY_CANARY not in out
