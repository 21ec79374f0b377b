"""One poll of each Redis job source across 20 queues: time and Redis commands per poll.

    .venv/bin/python benchmarks/bench_redis_sources.py [--db 5] [--polls 50]

Fills Redis database ``--db`` (flushed before and after; 5 by default) with each backend's
layout, written directly in the shapes the tests in ``tests/sources`` check against the real
libraries, at 10 and at 10,000 waiting jobs per queue, then times ``sample()``. The cost of a poll
should not depend on how long the queues are: the last line times rq on one queue of 1,000,000.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable

import redis

from autoscaler import config
from autoscaler.registry import build_source
from autoscaler.sources.arq import ARQ_HEAD
from autoscaler.sources.celery import SEP

QUEUES = [f"q{i:02d}" for i in range(20)]
CHUNK = 5000


def rq_fill(r: redis.Redis, queue: str, n: int, t0: float) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(t0))
    ids = [uuid.uuid4().hex for _ in range(n)]
    r.sadd("rq:queues", f"rq:queue:{queue}")
    for i in range(0, n, CHUNK):
        r.rpush(f"rq:queue:{queue}", *ids[i : i + CHUNK])
    pipe = r.pipeline(transaction=False)
    for job_id in ids[:20]:  # the probe reads the head only; the rest are ids in the list
        pipe.hset(f"rq:job:{job_id}", mapping={"enqueued_at": stamp, "created_at": stamp})
    pipe.execute()


def celery_fill(r: redis.Redis, queue: str, n: int, t0: float) -> None:
    r.sadd("_kombu.binding.celery", f"{queue}{SEP}{SEP}{queue}")
    body = {"body": "W10=", "headers": {"task": "nap", "eta": None}}
    message = json.dumps(body | {"properties": {"published_at": t0, "priority": 0}})
    for i in range(0, n, CHUNK):
        r.lpush(queue, *[message] * min(CHUNK, n - i))


def dramatiq_fill(r: redis.Redis, queue: str, n: int, t0: float) -> None:
    ids = [uuid.uuid4().hex for _ in range(n)]
    message = json.dumps({"queue_name": queue, "options": {}, "message_timestamp": int(t0 * 1e3)})
    for i in range(0, n, CHUNK):
        chunk = ids[i : i + CHUNK]
        r.hset(f"dramatiq:{queue}.msgs", mapping=dict.fromkeys(chunk, message))
        r.rpush(f"dramatiq:{queue}", *chunk)


def arq_fill(r: redis.Redis, queue: str, n: int, t0: float) -> None:
    ids = [uuid.uuid4().hex for _ in range(n)]
    for i in range(0, n, CHUNK):
        r.zadd(queue, {job_id: t0 * 1000 + i + j for j, job_id in enumerate(ids[i : i + CHUNK])})
    pipe = r.pipeline(transaction=False)
    for job_id in ids[:ARQ_HEAD]:  # pickled jobs: the probe checks that the head ones exist
        pipe.set(f"arq:job:{job_id}", b"\x80")
    pipe.execute()


def sidekiq_fill(r: redis.Redis, queue: str, n: int, t0: float) -> None:
    job = {"class": "HardJob", "args": [], "queue": queue, "jid": "x", "enqueued_at": t0}
    r.sadd("queues", queue)
    for i in range(0, n, CHUNK):
        r.lpush(f"queue:{queue}", *[json.dumps(job)] * min(CHUNK, n - i))


FILL: dict[str, Callable[[redis.Redis, str, int, float], None]] = {
    "rq": rq_fill,
    "celery": celery_fill,
    "dramatiq": dramatiq_fill,
    "arq": arq_fill,
    "sidekiq": sidekiq_fill,
}


def bench(r: redis.Redis, url: str, backend: str, queues: list[str], polls: int) -> str:
    names = ",".join(f"arq:{q}" if backend == "arq" else q for q in queues)
    env = {"AUTOSCALER_PROCESSES": "worker", "AUTOSCALER_WORKER_SOURCE": backend, "REDIS_URL": url}
    settings = config.load(env | {"AUTOSCALER_WORKER_QUEUES": names})
    source = build_source(settings, settings.processes["worker"])
    try:
        source.sample(time.time())  # connect
        before = int(r.info("stats")["total_commands_processed"])
        times = []
        for _ in range(polls):
            started = time.perf_counter()
            reading = source.sample(time.time())
            times.append((time.perf_counter() - started) * 1000)
        commands = (int(r.info("stats")["total_commands_processed"]) - before - 1) / polls
    finally:
        source.close()
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return (
        f"median {statistics.median(times):7.2f} ms  p95 {p95:7.2f} ms  "
        f"{commands:5.0f} commands/poll  (depth {reading.depth}, value {reading.value_ms:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=int, default=5)
    parser.add_argument("--polls", type=int, default=50)
    args = parser.parse_args()
    url = f"redis://127.0.0.1:6379/{args.db}"
    r = redis.Redis.from_url(url)
    server = r.info("server")["redis_version"]
    print(f"redis-py {redis.__version__}, Redis {server}, {args.polls} polls")
    try:
        for per_queue in (10, 10_000):
            for backend, fill in FILL.items():
                r.flushdb()
                t0 = time.time() - 30
                for queue in QUEUES:
                    fill(r, f"arq:{queue}" if backend == "arq" else queue, per_queue, t0)
                result = bench(r, url, backend, QUEUES, args.polls)
                print(f"{backend:9} 20 queues x {per_queue:>9,} jobs: {result}")
        r.flushdb()
        rq_fill(r, "big", 1_000_000, time.time() - 30)
        print(f"{'rq':9}  1 queue  x 1,000,000 jobs: {bench(r, url, 'rq', ['big'], args.polls)}")
    finally:
        r.flushdb()
        r.close()


if __name__ == "__main__":
    main()
