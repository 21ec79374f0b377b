"""The dramatiq source against messages sent by the real dramatiq library to the real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from autoscaler.ports import SourceError
from autoscaler.sources import dramatiq as dramatiq_source
from autoscaler.sources._redisjobs import Malformed
from tests.helpers import CLOCK_SLACK_MS, Stopwatch
from tests.sources.redisjobs import REDIS_URL, make_source

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(db: redis.Redis) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=REDIS_URL)
    dramatiq.set_broker(broker)
    yield broker
    broker.close()


def actor(broker: RedisBroker, fn: Callable[..., Any], queue: str = "default") -> Any:
    return dramatiq.actor(fn, broker=broker, queue_name=queue, actor_name=f"{fn.__name__}_{queue}")


def nap(seconds: float) -> None:
    time.sleep(seconds)


def test_queue_names_come_from_message_hashes_without_dead_letters() -> None:
    keys = dramatiq_source.Keys()
    found = [
        "dramatiq:default.msgs",
        "dramatiq:mail.DQ.msgs",
        "dramatiq:default.XQ.msgs",
        "dramatiq:a.b.msgs",
        "other:x.msgs",
    ]
    assert dramatiq_source.queue_names(found, keys) == ["a.b", "default", "mail"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"message_timestamp": 1785665472250, "options": {}}, 1785665472.25),
        (
            {"message_timestamp": 1785665000000, "options": {"enqueued_at_ms": 1785665472250}},
            1785665472.25,
        ),
    ],
)
def test_the_enqueue_stamp_wins_over_the_creation_time(
    message: dict[str, Any], expected: float
) -> None:
    raw = json.dumps(message).encode()
    assert dramatiq_source.waiting_since(raw, now=1785665500.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"garbage", "not JSON"),
        (b'"a string"', "not an object"),
        (b'{"options": {}}', "no message_timestamp"),
        (b'{"message_timestamp": "soon"}', "not an epoch timestamp"),
        (b'{"message_timestamp": null}', "not an epoch timestamp"),
    ],
)
def test_a_message_that_is_not_dramatiqs_is_malformed(raw: bytes, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        dramatiq_source.waiting_since(raw, now=1785665500.0)


def test_an_empty_queue_reads_zero(broker: RedisBroker) -> None:
    reading = make_source("dramatiq", queues="default").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


def test_discovery_with_nothing_enqueued_reads_zero_and_says_so(broker: RedisBroker) -> None:
    reading = make_source("dramatiq").sample(time.time())
    assert (reading.value_ms, reading.depth) == (0.0, 0)
    assert reading.warning is not None and "no dramatiq queue found" in reading.warning


def test_latency_is_the_age_of_the_oldest_message(broker: RedisBroker) -> None:
    job = actor(broker, nap)
    sending = Stopwatch()
    t0 = time.time()
    job.send(1)
    sent = sending.upper()  # the oldest message is stamped at most this long after t0
    time.sleep(0.5)
    job.send(1)
    actor(broker, nap, "mail").send(1)
    reading = make_source("dramatiq").sample(t0 + 3.0)
    assert 3000 - sent <= reading.value_ms <= 3000 + CLOCK_SLACK_MS
    assert set(reading.queues) == {"default", "mail"}
    assert reading.depth == 3


def test_a_future_delayed_message_does_not_count(broker: RedisBroker) -> None:
    actor(broker, nap).send_with_options(args=(1,), delay=300_000)
    reading = make_source("dramatiq", queues="default").sample(time.time())
    assert (reading.value_ms, reading.depth) == (0.0, 0)


def test_a_past_due_delayed_message_counts_from_its_eta(broker: RedisBroker) -> None:
    # No worker runs to move it to the queue (scaled to zero): it stays in default.DQ.
    sending = Stopwatch()
    t0 = time.time()
    actor(broker, nap).send_with_options(args=(1,), delay=1000)
    sent = sending.upper()  # stamped at most this long after t0, due 1 s after its stamp
    reading = make_source("dramatiq", queues="default").sample(t0 + 4.0)
    assert 3000 - sent <= reading.value_ms <= 3000 + CLOCK_SLACK_MS
    assert reading.depth == 1


def test_a_retried_message_with_the_stamp_counts_from_its_requeue(broker: RedisBroker) -> None:
    broker.add_middleware(dramatiq_source.enqueue_stamp())
    message = actor(broker, nap).message(1)
    time.sleep(1.0)  # sent 1 s ago and held (as a worker holds a delayed message)...
    enqueuing = Stopwatch()
    t1 = time.time()
    broker.enqueue(message.copy())  # ...then enqueued when due, as Worker.handle_delayed_messages
    enqueued = enqueuing.upper()  # stamped at most this long after t1
    reading = make_source("dramatiq", queues="default").sample(t1 + 2.0)
    assert 2000 - enqueued <= reading.value_ms <= 2000 + CLOCK_SLACK_MS  # not 3000: the send


def test_a_message_a_real_worker_runs_is_busy_not_waiting(broker: RedisBroker) -> None:
    actor(broker, nap).send(3)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        deadline = time.time() + 15
        while broker.client.llen("dramatiq:default"):
            assert time.time() < deadline, "the dramatiq worker did not fetch the message"
            time.sleep(0.05)
        reading = make_source("dramatiq", queues="default").sample(time.time())
        assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 1)
    finally:
        worker.join()
        worker.stop()
    reading = make_source("dramatiq", queues="default").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


def test_an_id_without_a_message_is_skipped(broker: RedisBroker) -> None:
    sending = Stopwatch()
    t0 = time.time()
    actor(broker, nap).send(1)
    sent = sending.upper()
    broker.client.rpush("dramatiq:default", "gone")
    reading = make_source("dramatiq", queues="default").sample(t0 + 1.0)
    assert 1000 - sent <= reading.value_ms <= 1000 + CLOCK_SLACK_MS
    assert reading.depth == 1


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe\x00", b"{}", b'{"message_timestamp": "x"}', b"[" * 100_000, b"x" * 5_000_000],
)
def test_garbage_in_the_broker_fails_naming_the_queue(db: redis.Redis, raw: bytes) -> None:
    db.hset("dramatiq:default.msgs", "m1", raw)
    db.rpush("dramatiq:default", "m1")
    with pytest.raises(SourceError, match="dramatiq: queue 'default'"):
        make_source("dramatiq", queues="default").sample(time.time())


def test_garbage_in_the_delay_queue_fails_naming_the_queue(db: redis.Redis) -> None:
    db.hset("dramatiq:default.DQ.msgs", "m1", '{"options": {"eta": "later"}}')
    db.rpush("dramatiq:default.DQ", "m1")
    with pytest.raises(SourceError, match=r"queue 'default'.*delay queue.*eta"):
        make_source("dramatiq", queues="default").sample(time.time())


def test_a_queue_of_the_wrong_type_fails(db: redis.Redis) -> None:
    db.set("dramatiq:default", "x")
    with pytest.raises(SourceError, match=r"queue 'default'.*wrong type"):
        make_source("dramatiq", queues="default").sample(time.time())
