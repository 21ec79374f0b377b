"""Item 7 of issue 11, the daemon's side: the learned state kept beside the lock (Redis db 12,
PostgreSQL schemas ``t_learned_*``; run through ``/work/wt/isolated`` or with those services),
loaded once at start, saved every few minutes by the leader only, ignored when it fails."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import psycopg
import pytest
import redis

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.locks.state_postgres import PostgresStateStore
from autoscaler.locks.state_redis import RedisStateStore
from autoscaler.loop import Autoscaler
from autoscaler.model import Metric
from autoscaler.policy import BIN_READINGS, PolicyState, learn
from autoscaler.policy.snapshot import snapshot
from autoscaler.policy_store import SAVE_EVERY, Learned
from autoscaler.ports import StoreError
from autoscaler.testing import FakePlatform, FakeSource

REDIS_URL = "redis://127.0.0.1:6379/12"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def redis_store() -> Iterator[RedisStateStore]:
    store = RedisStateStore(REDIS_URL, "t_learned_" + secrets.token_hex(4))
    yield store
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    store.close()


@pytest.fixture
def pg_store() -> Iterator[PostgresStateStore]:
    schema = "t_learned_" + secrets.token_hex(4)
    yield PostgresStateStore(DATABASE_URL, "autoscaler:test", schema)
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def learned() -> PolicyState:
    bins: dict[int, tuple[float, int]] = {}
    for _ in range(BIN_READINGS):
        bins, _ = learn(bins, 20.0, 150.0)
    return PolicyState(capacity=20.0, sure=True, bins=bins)


@pytest.mark.integration
@pytest.mark.parametrize("which", ["redis_store", "pg_store"])
def test_a_store_keeps_the_snapshots(which, request):
    store = request.getfixturevalue(which)
    assert store.load() == {}
    value = {"web": snapshot(learned(), 100.0)}
    store.save(value)
    assert store.load() == json.loads(json.dumps(value))
    store.save({"web": {"version": 1}})  # replaced, not merged
    assert store.load() == {"web": {"version": 1}}


@pytest.mark.integration
def test_garbage_in_redis_reads_as_nothing(redis_store):
    client = redis.Redis.from_url(REDIS_URL)
    client.set(redis_store.key, b"\xff not json")
    assert redis_store.load() == {}
    client.set(redis_store.key, b"[1, 2]")
    assert redis_store.load() == {}
    client.close()


def test_an_unreachable_store_raises_a_store_error():
    store = RedisStateStore("redis://127.0.0.1:1/0", "x")
    with pytest.raises(StoreError):
        store.load()
    with pytest.raises(StoreError):
        store.save({})


class MemoryStore:
    def __init__(self, saved=None, fail=False):
        self.saved = saved or {}
        self.loads = 0
        self.saves: list[dict] = []
        self.fail = fail

    def load(self):
        self.loads += 1
        if self.fail:
            raise StoreError("down")
        return dict(self.saved)

    def save(self, snapshots):
        if self.fail:
            raise StoreError("down")
        self.saves.append(dict(snapshots))
        self.saved = dict(snapshots)

    def close(self):
        pass


class Log:
    def __init__(self):
        self.events = []

    def info(self, event, **fields):
        self.events.append((event, fields))

    warning = info


def test_loaded_once_saved_every_few_minutes_by_the_leader_only():
    store, log = MemoryStore({"web": snapshot(learned(), 0.0)}), Log()
    keep = Learned(store, log)
    web = keep.restore("web", PolicyState(), 10.0)
    worker = keep.restore("worker", PolicyState(), 10.0)
    assert (web.capacity, web.sure, worker.capacity, store.loads) == (20.0, True, None, 1)
    keep.maybe_save({"web": web}, 10.0, leader=False)
    assert store.saves == []
    keep.maybe_save({"web": web}, 10.0, leader=True)
    keep.maybe_save({"web": web}, 10.0 + SAVE_EVERY - 1, leader=True)
    assert len(store.saves) == 1
    keep.maybe_save({"web": web}, 10.0 + SAVE_EVERY, leader=True)
    assert len(store.saves) == 2
    assert (
        "learned_state",
        {"process": "web", "restored": True, "capacity": 20.0, "sure": True, "boot_s": None},
    ) in log.events


def test_a_failing_store_is_logged_and_ignored():
    log = Log()
    keep = Learned(MemoryStore(fail=True), log)
    state = PolicyState()
    assert keep.restore("web", state, 0.0) is state
    keep.maybe_save({"web": state}, 0.0, leader=True)
    assert [e for e, _ in log.events] == ["learned_state_unavailable", "learned_state_not_saved"]


def test_the_daemon_restores_at_start_and_saves_as_it_runs():
    env = {
        "AUTOSCALER_PLATFORM": "heroku",
        "HEROKU_API_TOKEN": "t",
        "HEROKU_APP_NAME": "my-app",
        "AUTOSCALER_PROCESSES": "web",
        "AUTOSCALER_WEB_MAX": "40",
    }
    store = MemoryStore({"web": snapshot(learned(), 0.0)})
    platform = FakePlatform({"web": 3})
    source = FakeSource(100.0)  # in the band
    source.rate_per_s = 150.0  # 150 requests/s at 20 each: 8 instances
    clock = FakeClock()
    scaler = Autoscaler(load(env), platform, {"web": source}, clock, store=store)
    report = scaler.tick()
    assert report.decisions[0].reason.value == "forecast"
    assert platform.journal == [{"web": 8}]
    assert store.loads == 1 and len(store.saves) == 1
    assert store.saved["web"]["capacity"] == 20.0
    assert source.metric is Metric.REQUEST_QUEUE_TIME
