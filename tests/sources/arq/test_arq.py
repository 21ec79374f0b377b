"""The arq source against jobs enqueued by the real arq library in the real Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from autoscaler.ports import ConfigError, SourceError
from autoscaler.sources import arq as arq_source
from tests.helpers import CLOCK_SLACK_MS, Stopwatch
from tests.sources.redisjobs import REDIS_DB, make_source

pytestmark = pytest.mark.integration
T0 = 1785665472.0
SETTINGS = RedisSettings(host="127.0.0.1", port=6379, database=REDIS_DB)


async def nap(ctx: dict[str, Any], seconds: float) -> None:
    await asyncio.sleep(seconds)


def enqueue(*args: Any, **kwargs: Any) -> None:
    async def go() -> None:
        pool = await create_pool(SETTINGS)
        try:
            assert await pool.enqueue_job("nap", *args, **kwargs) is not None
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_running_and_expired_ids_are_not_waiting() -> None:
    head = [(b"a", T0 * 1000), (b"b", (T0 + 1) * 1000), (b"c", (T0 + 2) * 1000)]
    flags = [(1, 1), (0, 0), (0, 1)]
    state, busy = arq_source.queue_state(3, head, flags, now=T0 + 10)
    assert (state.due_at, state.depth, busy) == (T0 + 2, 1, 1)


def test_when_every_id_read_is_running_the_last_one_bounds_the_age() -> None:
    head = [(b"a", T0 * 1000), (b"b", (T0 + 1) * 1000)]
    state, busy = arq_source.queue_state(5, head, [(1, 1), (1, 1)], now=T0 + 10)
    assert (state.due_at, state.depth, busy) == (T0 + 1, 3, 2)


def test_an_empty_queue_reads_zero(db: redis.Redis) -> None:
    reading = make_source("arq").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)
    assert reading.queues == {"arq:queue": 0.0}


def test_latency_is_the_age_of_the_oldest_job(db: redis.Redis) -> None:
    enqueuing = Stopwatch()
    t0 = time.time()
    enqueue(1)
    enqueue(1, _queue_name="arq:low")
    enqueued = enqueuing.upper()  # both enqueued at most this long after t0
    reading = make_source("arq", queues="arq:queue,arq:low").sample(t0 + 3.0)
    assert 3000 - enqueued <= reading.value_ms <= 3000 + CLOCK_SLACK_MS
    assert 3000 - enqueued <= reading.queues["arq:low"] <= 3000 + CLOCK_SLACK_MS
    assert reading.depth == 2


def test_a_deferred_job_does_not_count_until_due(db: redis.Redis) -> None:
    enqueue(1, _defer_by=timedelta(minutes=5))
    reading = make_source("arq").sample(time.time())
    assert (reading.value_ms, reading.depth) == (0.0, 0)


def test_a_past_due_deferred_job_counts_from_its_due_time(db: redis.Redis) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1)
    enqueue(1, _defer_until=due)
    reading = make_source("arq").sample(due.timestamp() + 2.0)
    assert reading.value_ms == pytest.approx(2000, abs=250)
    assert reading.depth == 1


def test_a_job_a_real_worker_runs_is_busy_not_waiting(db: redis.Redis) -> None:
    enqueue(3)

    async def work() -> None:
        worker = Worker(functions=[nap], redis_settings=SETTINGS, burst=True, handle_signals=False)
        try:
            await worker.main()
        finally:
            await worker.close()

    thread = threading.Thread(target=lambda: asyncio.run(work()), daemon=True)
    thread.start()
    try:
        deadline = time.time() + 15
        while not db.keys("arq:in-progress:*"):
            assert time.time() < deadline, "the arq worker did not start the job"
            time.sleep(0.05)
        reading = make_source("arq").sample(time.time())
        assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 1)
    finally:
        thread.join(timeout=30)
    reading = make_source("arq").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


def test_a_queue_of_the_wrong_type_fails(db: redis.Redis) -> None:
    db.rpush("arq:queue", "x")
    with pytest.raises(SourceError, match=r"arq: queue 'arq:queue'.*wrong type"):
        make_source("arq").sample(time.time())


def test_a_score_that_is_not_milliseconds_fails(db: redis.Redis) -> None:
    db.zadd("arq:queue", {"job": time.time()})  # seconds where arq writes milliseconds
    db.set("arq:job:job", b"\x80pickled")
    with pytest.raises(SourceError, match=r"arq: queue 'arq:queue'.*score"):
        make_source("arq").sample(time.time())


def test_a_key_prefix_is_refused() -> None:
    with pytest.raises(ConfigError, match="KEY_PREFIX"):
        make_source("arq", key_prefix="x")
