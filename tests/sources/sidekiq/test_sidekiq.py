"""The sidekiq source against keys written exactly as Sidekiq writes them.

No Ruby here, so each helper below writes what Sidekiq itself writes, from its source:

- push: ``lib/sidekiq/client.rb`` ``atomic_push`` (v6.4.1, v7.3.9, 8.x): ``SADD queues <q>`` and
  ``LPUSH queue:<q> <job json>`` with ``enqueued_at`` set at push time, ``Time.now.to_f`` (float
  epoch seconds) in 6.x and 7.x; in 8.0+ ``created_at`` and ``enqueued_at`` are integer epoch
  milliseconds (8.0.0 ``Changes.md``). Job keys: ``retry, queue, class, args, jid, created_at,
  enqueued_at`` (``normalize_item``).
- scheduling: the same ``atomic_push`` with ``at``: ``ZADD schedule <at as float s> <job json
  without enqueued_at and at>``; retries: ``lib/sidekiq/job_retry.rb`` ``ZADD retry <retry_at>
  <job json with retry_count, failed_at, error_class, error_message>``.
- a running job: ``lib/sidekiq/launcher.rb`` heartbeat: ``SADD processes <identity>``,
  ``HSET <identity> info <json> busy <n> beat <float s> ...`` with ``EXPIRE 60``, and
  ``HSET <identity>:work <tid> {"queue", "payload" (job JSON as a string), "run_at"}``
  (``<identity>:workers`` with the payload as an object in 6.x); the fetcher took the job off the
  queue list with ``BRPOP`` (``lib/sidekiq/fetch.rb``).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import redis

from autoscaler.ports import SourceError
from autoscaler.sources import sidekiq
from autoscaler.sources._redisjobs import Malformed
from tests.sources.redisjobs import make_source

pytestmark = pytest.mark.integration


def job(queue: str, at: float, version: int) -> dict[str, Any]:
    stamp: float | int = int(at * 1000) if version >= 8 else at
    return {
        "retry": True,
        "queue": queue,
        "class": "HardJob",
        "args": [1, "two"],
        "jid": secrets.token_hex(12),
        "created_at": stamp,
        "enqueued_at": stamp,
    }


def push(db: redis.Redis, queue: str, at: float, version: int = 7) -> dict[str, Any]:
    payload = job(queue, at, version)
    db.sadd("queues", queue)
    db.lpush(f"queue:{queue}", json.dumps(payload))
    return payload


def schedule(db: redis.Redis, queue: str, at: float, zset: str = "schedule") -> None:
    payload = job(queue, time.time(), 7)
    del payload["enqueued_at"]
    if zset == "retry":
        payload |= {"retry_count": 0, "failed_at": time.time(), "error_class": "RuntimeError"}
        payload["error_message"] = "boom"
    db.zadd(zset, {json.dumps(payload): at})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1785665472.25, 1785665472.25),  # Sidekiq 6/7: float seconds
        (1785665472250, 1785665472.25),  # Sidekiq 8: integer milliseconds
        (1785665472, 1785665472.0),  # a float that happens to be whole, printed by Ruby as int
    ],
)
def test_enqueued_at_is_read_in_seconds_or_milliseconds(value: float, seconds: float) -> None:
    raw = json.dumps({"queue": "default", "enqueued_at": value}).encode()
    assert sidekiq.job_time(raw, now=1785665500.0) == pytest.approx(seconds)


def test_created_at_stands_in_when_enqueued_at_is_absent() -> None:
    raw = json.dumps({"created_at": 1785665472.5}).encode()
    assert sidekiq.job_time(raw, now=1785665500.0) == pytest.approx(1785665472.5)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"queue": "default"}', "neither enqueued_at nor created_at"),
        (b'{"enqueued_at": "2026-01-01"}', "not an epoch timestamp"),
        (b'{"enqueued_at": true}', "not an epoch timestamp"),
        (b'{"enqueued_at": 1785665472250000}', "not a plausible time"),  # microseconds
        (b'{"enqueued_at": -5}', "not a plausible time"),
    ],
)
def test_a_job_that_is_not_sidekiqs_is_malformed(raw: bytes, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        sidekiq.job_time(raw, now=1785665500.0)


def test_an_empty_queue_reads_zero(db: redis.Redis) -> None:
    reading = make_source("sidekiq", queues="default").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


@pytest.mark.parametrize("version", [6, 7, 8])
def test_latency_is_the_age_of_the_oldest_job(db: redis.Redis, version: int) -> None:
    t0 = time.time()
    push(db, "default", t0, version)
    push(db, "default", t0 + 1, version)
    push(db, "mailers", t0 + 2, version)
    reading = make_source("sidekiq").sample(t0 + 3.0)
    assert reading.value_ms == pytest.approx(3000, abs=250)
    assert reading.queues["mailers"] == pytest.approx(1000, abs=250)
    assert reading.depth == 3


def test_only_the_processs_queues_count(db: redis.Redis) -> None:
    t0 = time.time()
    push(db, "default", t0 - 60)
    push(db, "critical", t0 - 5)
    reading = make_source("sidekiq", queues="critical").sample(t0)
    assert reading.queues == {"critical": pytest.approx(5000, abs=250)}


def test_future_scheduled_and_retrying_jobs_do_not_count(db: redis.Redis) -> None:
    schedule(db, "default", time.time() + 300)
    schedule(db, "default", time.time() + 300, zset="retry")
    reading = make_source("sidekiq", queues="default").sample(time.time())
    assert (reading.value_ms, reading.depth) == (0.0, 0)


@pytest.mark.parametrize("zset", ["schedule", "retry"])
def test_a_past_due_job_not_yet_moved_counts_from_its_due_time(db: redis.Redis, zset: str) -> None:
    now = time.time()
    schedule(db, "default", now - 20.5, zset=zset)
    schedule(db, "other", now - 100, zset=zset)
    reading = make_source("sidekiq", queues="default").sample(now)
    assert reading.value_ms == pytest.approx(20500, abs=250)
    assert reading.depth == 1


def test_a_job_a_worker_fetched_is_busy_not_waiting(db: redis.Redis) -> None:
    t0 = time.time()
    payload = push(db, "default", t0 - 10)
    db.brpop(["queue:default"], timeout=1)  # what Sidekiq's fetcher does
    identity = "web.1:12:abcdef123456"
    db.sadd("processes", identity)
    info = {"hostname": "web.1", "pid": 12, "concurrency": 5, "queues": ["default"]}
    db.hset(identity, mapping={"info": json.dumps(info), "busy": 1, "beat": t0})
    db.expire(identity, 60)
    work = {"queue": "default", "payload": json.dumps(payload), "run_at": t0}
    db.hset(f"{identity}:work", "tid-1", json.dumps(work))
    # a process that died: its hash expired, its work entry is stale
    db.sadd("processes", "web.2:13:dead")
    db.hset("web.2:13:dead:work", "tid-2", json.dumps(work))
    reading = make_source("sidekiq", queues="default").sample(t0)
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 1)


def test_sidekiq_6_workers_hash_counts_as_busy(db: redis.Redis) -> None:
    identity = "web.1:12:abcdef"
    db.sadd("processes", identity)
    db.hset(identity, mapping={"busy": 1, "beat": time.time()})
    entry = {"queue": "default", "payload": job("default", time.time(), 6), "run_at": 1}
    db.hset(f"{identity}:workers", "tid", json.dumps(entry))
    reading = make_source("sidekiq", queues="default").sample(time.time())
    assert reading.busy == 1


def test_a_namespace_is_followed(db: redis.Redis) -> None:
    t0 = time.time()
    db.sadd("myapp:queues", "default")
    db.lpush("myapp:queue:default", json.dumps(job("default", t0, 7)))
    reading = make_source("sidekiq", key_prefix="myapp").sample(t0 + 1)
    assert reading.queues == {"default": pytest.approx(1000, abs=250)}


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\xff garbage",
        b'{"class": "HardJob"}',
        b'{"enqueued_at": "yesterday"}',
        json.dumps({"enqueued_at": time.time(), "args": ["x" * 5_000_000]}).encode() + b"}",
    ],
)
def test_garbage_in_a_queue_fails_naming_the_queue(db: redis.Redis, raw: bytes) -> None:
    db.lpush("queue:default", raw)
    with pytest.raises(SourceError, match="sidekiq: queue 'default'"):
        make_source("sidekiq", queues="default").sample(time.time())


def test_a_huge_valid_job_is_read(db: redis.Redis) -> None:
    t0 = time.time()
    payload = job("default", t0, 8) | {"args": ["x" * 5_000_000]}
    db.lpush("queue:default", json.dumps(payload))
    reading = make_source("sidekiq", queues="default").sample(t0 + 2)
    assert reading.value_ms == pytest.approx(2000, abs=250)


def test_garbage_in_the_schedule_fails_naming_the_set(db: redis.Redis) -> None:
    db.zadd("schedule", {"not json": time.time() - 5})
    with pytest.raises(SourceError, match="the schedule set"):
        make_source("sidekiq", queues="default").sample(time.time())


def test_a_queue_of_the_wrong_type_fails(db: redis.Redis) -> None:
    db.hset("queue:default", "a", "b")
    with pytest.raises(SourceError, match=r"queue 'default'.*wrong type"):
        make_source("sidekiq", queues="default").sample(time.time())
