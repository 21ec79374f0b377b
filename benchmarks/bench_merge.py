"""Daemon-side cost of the web signal: 100 app processes x 30 s of 5 s flushes.

    .venv/bin/python benchmarks/bench_merge.py

Publishes 600 realistic flushes into the real Redis database 3 with the publisher's own
commands (each flush is 5 s at 40 requests/s with log-normal queue times: 200 samples over a
few dozen buckets). Redis merges them into 5-second slot hashes as they arrive. Then times
(1) the daemon's decode + merge + p95 of the slot hashes of a 30 s window, from the HGETALL
replies, and (2) the whole ``request_queue_time`` poll (network included). Target for (1):
under 5 ms. Keys under ``autoscaler:queue_time:v1:benchmerge:*`` are deleted at the end.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import redis

from autoscaler.sources.request_queue_time import (
    RequestQueueTimeSource,
    reading_from,
    window_slots,
)
from autoscaler.web import wire
from autoscaler.web.publisher import queue_flush

REDIS_URL = "redis://127.0.0.1:6379/3"
PROCESS = "benchmerge"
PROCESSES = 100
WINDOW = 30.0
INTERVAL = 5.0
RATE = 40
RUNS = 50


def publish(client: redis.Redis, now: float) -> int:
    rng = random.Random(1)
    samples = 0
    for p in range(PROCESSES):
        pipe = client.pipeline(transaction=False)
        for i in range(int(WINDOW / INTERVAL)):
            hist = wire.Histogram()
            for _ in range(int(RATE * INTERVAL)):
                hist.add(rng.lognormvariate(3.0, 1.0))  # median 20 ms, long tail
            inc = wire.increments(
                hist,
                interval=INTERVAL,
                keep=300.0,
                requests=hist.count,
                busy=rng.randint(0, 4),
                skew=0,
                drops={},
            )
            t = now - i * INTERVAL - rng.random()
            queue_flush(pipe, process=PROCESS, publisher=f"web.{p}:1", now=t, inc=inc, keep=300)
            samples += hist.count
        pipe.execute()
    return samples


def timed(fn: Callable[[], object], runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def main() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    now = time.time()
    for key in client.scan_iter(f"{wire.PREFIX}{PROCESS}:*"):
        client.delete(key)
    published = publish(client, now)
    source = RequestQueueTimeSource(client, PROCESS, WINDOW, "p95")
    try:
        numbers = window_slots(now, WINDOW)
        hashes = [client.hgetall(wire.slot_key(PROCESS, n)) for n in numbers]
        slots = dict(zip(numbers, hashes, strict=True))
        fields = sum(len(h) for h in hashes)
        print(
            f"{PROCESSES} processes x {WINDOW:g} s of {INTERVAL:g} s flushes = "
            f"{published} samples, held by Redis in {sum(1 for h in hashes if h)} slot hashes "
            f"of {fields} fields in all"
        )

        def pure() -> object:
            return reading_from(slots, now, now=now, window=WINDOW, aggregate="p95", where="bench")

        merge_ms = timed(pure)
        reading = reading_from(slots, now, now=now, window=WINDOW, aggregate="p95", where="bench")
        print(
            f"decode + merge + p95 ({reading.samples} samples, p95 {reading.value_ms:.1f} ms): "
            f"median {merge_ms:.3f} ms"
        )
        poll_ms = timed(lambda: source.sample(now), runs=20)
        print(f"full source poll from real Redis (network + the above): median {poll_ms:.2f} ms")
    finally:
        for key in client.scan_iter(f"{wire.PREFIX}{PROCESS}:*"):
            client.delete(key)
        source.close()
    print(f"target < 5 ms for decode + merge: {'met' if merge_ms < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
