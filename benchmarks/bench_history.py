"""History size and dashboard load time, against the machine's real Redis (database 12).

- Size: 14 days of one process recorded tick by tick (5 s ticks, as the daemon does) through the
  Recorder into the Redis store; Redis's own MEMORY USAGE of every key, per process per day.
- Load: the dashboard's two API calls for 14 days of 5 processes (what the page fetches at the
  14 d range), served by the WSGI app from the Redis store: median and spread of several runs.

Leaves out: the browser's parse and draw time (the page test in tests/dashboard draws it in a
real Chromium), network latency to a remote Redis, and the daemon's other threads.

    .venv/bin/python benchmarks/bench_history.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import redis

from autoscaler.dashboard import DashboardApp
from autoscaler.history import Recorder, TickFacts, seed
from autoscaler.stores.redis import RedisStore

URL = "redis://127.0.0.1:6379/12"


def size_per_day(client: redis.Redis) -> float:
    client.flushdb()
    store = RedisStore(client, "bench:size")
    rec = Recorder(store)
    t0 = (int(time.time()) // 86400 - 14) * 86400
    for i in range(14 * 86400 // 5):
        q = 2 + (i // 720) % 5
        rec.tick(
            t0 + 5 * i,
            [
                TickFacts(
                    "web",
                    20.0 + i % 97,
                    True,
                    q,
                    q,
                    31.7 + i % 13,
                    4.2,
                    i % 720 == 0,
                    "up",
                    "above_band",
                    q + 1,
                )
            ],
        )
    rec.flush()
    used = sum(int(client.memory_usage(k) or 0) for k in client.keys("bench:size:*"))
    return used / 14


def load_times(client: redis.Redis, runs: int) -> list[float]:
    client.flushdb()
    store = RedisStore(client, "bench:load")
    processes = ["web", "worker", "urgent", "mailer", "reports"]
    seed(store, processes, days=14, end=time.time())
    app = DashboardApp(store, token=None)
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        status, _, _ = app.handle("GET", "/api/processes", "", {})
        assert status == 200
        for p in processes:
            status, _, body = app.handle("GET", "/api/history", f"process={p}&range=14d", {})
            assert status == 200 and len(body) > 1000
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    client = redis.Redis.from_url(URL)
    try:
        per_day = size_per_day(client)
        print(f"history in Redis: {per_day:,.0f} bytes per process per day (14 days, 5 s ticks)")
        times = load_times(client, args.runs)
        print(
            f"dashboard API, 14 days of 5 processes: median {statistics.median(times) * 1000:.0f} "
            f"ms, min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f} ({args.runs} runs)"
        )
    finally:
        client.flushdb()


if __name__ == "__main__":
    main()
