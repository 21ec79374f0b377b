"""The rq source against jobs enqueued by the real rq library in the real Redis."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue, Worker
from rq.job import Job, JobStatus

from autoscaler.ports import SourceError
from autoscaler.sources import rq as rq_source
from autoscaler.sources._redisjobs import Malformed, finished_since
from tests.sources.redisjobs import REDIS_URL, ROOT, make_source
from tests.sources.rq import jobs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("raw", "epoch"),
    [
        ("2026-08-02T10:11:12.250000Z", 1785665472.25),
        ("2026-08-02T10:11:12Z", 1785665472.0),
    ],
)
def test_rq_timestamps_parse_as_utc(raw: str, epoch: float) -> None:
    assert rq_source.parse_enqueued_at(raw) == pytest.approx(epoch)


@pytest.mark.parametrize("raw", ["", "yesterday", "2026-08-02 10:11:12", "1785665472"])
def test_a_timestamp_that_is_not_rqs_is_malformed(raw: str) -> None:
    with pytest.raises(Malformed, match="not an RQ timestamp"):
        rq_source.parse_enqueued_at(raw)


def test_queue_names_strip_the_key_prefix_and_keep_colons() -> None:
    keys = rq_source.Keys("rq")
    members = [b"rq:queue:default", b"rq:queue:a:b", b"other:queue:x", b"rq:queue:"]
    assert rq_source.queue_names(members, keys) == ["default", "a:b"]


def test_an_empty_queue_reads_zero(db: redis.Redis) -> None:
    source = make_source("rq", queues="default")
    reading = source.sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)
    assert reading.queues == {"default": 0.0}


def test_latency_is_the_age_of_the_oldest_job(db: redis.Redis) -> None:
    queue = Queue("default", connection=db)
    t0 = time.time()
    queue.enqueue(jobs.noop)
    queue.enqueue(jobs.noop)
    reading = make_source("rq", queues="default").sample(t0 + 3.0)
    assert reading.value_ms == pytest.approx(3000, abs=250)
    assert (reading.depth, reading.samples) == (2, 2)


def test_a_job_pushed_at_the_front_does_not_hide_the_older_ones(db: redis.Redis) -> None:
    queue = Queue("default", connection=db)
    t0 = time.time()
    queue.enqueue(jobs.noop)
    time.sleep(0.3)
    queue.enqueue(jobs.noop, at_front=True)
    reading = make_source("rq", queues="default").sample(t0 + 2.0)
    assert reading.value_ms == pytest.approx(2000, abs=250)


def test_discovery_finds_every_queue_and_reports_the_max(db: redis.Redis) -> None:
    t0 = time.time()
    Queue("low", connection=db).enqueue(jobs.noop)
    Queue("high:urgent", connection=db)  # declared, never used: not registered by rq
    Queue("mail", connection=db).enqueue_at(datetime.fromtimestamp(int(t0) - 10, UTC), jobs.noop)
    reading = make_source("rq").sample(t0 + 1.0)
    assert set(reading.queues) == {"low", "mail"}
    assert reading.queues["low"] == pytest.approx(1000, abs=250)
    assert reading.value_ms == pytest.approx((t0 + 1.0 - int(t0) + 10) * 1000, abs=250)


def test_discovery_keeps_the_first_queues_by_name_and_says_so(db: redis.Redis) -> None:
    for i in range(25):
        Queue(f"q{i:02d}", connection=db).enqueue(jobs.noop)
    reading = make_source("rq", queue_discovery_limit="20").sample(time.time())
    assert sorted(reading.queues) == [f"q{i:02d}" for i in range(20)]
    assert reading.warning is not None and "found 25 queues" in reading.warning


def test_a_future_scheduled_job_does_not_count(db: redis.Redis) -> None:
    Queue("default", connection=db).enqueue_in(timedelta(minutes=5), jobs.noop)
    reading = make_source("rq", queues="default").sample(time.time())
    assert (reading.value_ms, reading.depth) == (0.0, 0)


def test_a_past_due_scheduled_job_counts_from_its_due_time(db: redis.Redis) -> None:
    # No scheduler runs (every worker scaled to zero), so the due job stays in rq:scheduled.
    due = int(time.time()) - 30
    Queue("default", connection=db).enqueue_at(datetime.fromtimestamp(due, UTC), jobs.noop)
    now = time.time()
    reading = make_source("rq", queues="default").sample(now)
    assert reading.value_ms == pytest.approx((now - due) * 1000, abs=250)
    assert reading.depth == 1


def test_a_job_a_real_worker_runs_is_busy_not_waiting(db: redis.Redis) -> None:
    queue = Queue("default", connection=db)
    job = queue.enqueue(jobs.sleep, 4)
    worker = subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", REDIS_URL, "default"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 20
        while job.get_status(refresh=True) != JobStatus.STARTED:
            assert time.time() < deadline, "the rq worker did not start the job"
            time.sleep(0.1)
        reading = make_source("rq", queues="default").sample(time.time())
        assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 1)
    finally:
        worker.wait(timeout=30)
    reading = make_source("rq", queues="default").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


def test_ids_whose_job_hash_expired_are_skipped(db: redis.Redis) -> None:
    queue = Queue("default", connection=db)
    t0 = time.time()
    queue.enqueue(jobs.noop)
    db.lpush("rq:queue:default", "gone-1", "gone-2")
    reading = make_source("rq", queues="default").sample(t0 + 1.0)
    assert reading.value_ms == pytest.approx(1000, abs=250)
    assert reading.depth == 1


def test_a_garbage_timestamp_fails_naming_queue_and_job(db: redis.Redis) -> None:
    db.rpush("rq:queue:default", "bad")
    db.hset("rq:job:bad", mapping={"created_at": "x", "enqueued_at": "not a time"})
    with pytest.raises(SourceError, match=r"queue 'default'.*job 'bad'.*enqueued_at"):
        make_source("rq", queues="default").sample(time.time())


@pytest.mark.parametrize(
    "fields",
    [
        {"created_at": "2026-01-01T00:00:00.000000Z"},  # no enqueued_at
        {"enqueued_at": b"\xff\xfe" * 10},  # not text
        {"enqueued_at": "9" * 1_000_000},  # huge
        {"enqueued_at": "2999-01-01T00:00:00.000000Z"},  # far future: not a time we know
    ],
)
def test_a_malformed_job_hash_fails_rather_than_reading_zero(
    db: redis.Redis, fields: dict[str, str | bytes]
) -> None:
    db.rpush("rq:queue:default", "bad")
    db.hset("rq:job:bad", mapping=fields)
    with pytest.raises(SourceError, match="queue 'default'"):
        make_source("rq", queues="default").sample(time.time())


def test_a_queue_key_of_the_wrong_type_fails(db: redis.Redis) -> None:
    db.set("rq:queue:default", "surprise")
    with pytest.raises(SourceError, match=r"queue 'default'.*wrong type"):
        make_source("rq", queues="default").sample(time.time())


def test_a_custom_key_prefix_is_followed(db: redis.Redis) -> None:
    class PrefixedQueue(Queue):
        redis_queue_namespace_prefix = "myapp:queue:"
        redis_queues_keys = "myapp:queues"

    class PrefixedJob(Job):
        redis_job_namespace_prefix = "myapp:job:"

    t0 = time.time()
    PrefixedQueue("default", connection=db, job_class=PrefixedJob).enqueue(jobs.noop)
    reading = make_source("rq", key_prefix="myapp").sample(t0 + 1.0)
    assert reading.queues == {"default": pytest.approx(1000, abs=250)}


def test_a_queue_name_that_is_not_text_fails(db: redis.Redis) -> None:
    db.sadd("rq:queues", b"rq:queue:\xff\xfe")
    with pytest.raises(SourceError, match="rq: a queue name is not UTF-8"):
        make_source("rq").sample(time.time())


def test_finished_is_the_rise_of_the_workers_counters_and_unknown_when_it_cannot_be_told() -> None:
    # first reading: nothing to compare with
    assert finished_since(None, {"w1": 5}, {"w1"}) == (None, {"w1": 5})
    # a rise; a worker registered since (all its jobs came after); one listed but not recorded
    found = finished_since({"w1": 5}, {"w1": 7, "w2": 3, "w3": None}, {"w1", "w2", "w3"})
    assert found == (5, {"w1": 7, "w2": 3})
    # a worker that stopped since, whose hash is still there: counted, then no longer kept
    assert finished_since({"w1": 5, "w2": 3}, {"w1": 5, "w2": 4}, {"w1"}) == (1, {"w1": 5})
    # a counter that went back (restarted under its name): unknown, never negative
    assert finished_since({"w1": 5}, {"w1": 2}, {"w1"}) == (None, {"w1": 2})
    # a worker seen before whose record is gone: what it ran since is unknown
    assert finished_since({"w1": 5, "w2": 3}, {"w1": 6, "w2": None}, {"w1"}) == (None, {"w1": 6})


def test_finished_counts_the_jobs_real_workers_ended_between_polls(db: redis.Redis) -> None:
    queue = Queue("default", connection=db)
    command = [sys.executable, "-m", "rq.cli", "worker", "--url", REDIS_URL, "default"]
    workers = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        deadline = time.time() + 20
        while len(Worker.all(queue=queue)) < 2:
            assert time.time() < deadline, "the rq workers did not register"
            time.sleep(0.05)
        source = make_source("rq", queues="default")
        assert source.sample(time.time()).finished is None  # the first poll: unknown
        assert source.sample(time.time()).finished == 0
        done = [queue.enqueue(jobs.noop) for _ in range(4)] + [queue.enqueue(jobs.fail)]
        while any(j.get_status(refresh=True) not in ("finished", "failed") for j in done):
            assert time.time() < deadline + 20, "the jobs did not end"
            time.sleep(0.05)
        time.sleep(0.5)  # the counters are written after the job's status
        reading = source.sample(time.time())
        assert (reading.depth, reading.busy, reading.finished) == (0, 0, 5)
        assert source.sample(time.time()).finished == 0
        # one worker stops (a warm shutdown): its hash stays 60 s, nothing more ended
        workers[0].terminate()
        workers[0].wait(timeout=30)
        queue.enqueue(jobs.noop).get_status()
        while len(Worker.all(queue=queue)) > 1:
            time.sleep(0.05)
        deadline = time.time() + 20
        while queue.count or queue.started_job_registry.count:
            assert time.time() < deadline, "the job did not end"
            time.sleep(0.05)
        time.sleep(0.5)
        assert source.sample(time.time()).finished == 1
        # a worker seen before whose record is gone: unknown, not zero
        (left,) = Worker.all(queue=queue)
        db.delete(left.key)
        assert source.sample(time.time()).finished is None
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
