"""Median per-request overhead of the queue-time middleware against the bare app.

    .venv/bin/python benchmarks/bench_middleware.py

Calls a trivial WSGI app and a trivial ASGI app in-process (no server, no network), with and
without the middleware, with an ``X-Request-Start`` header 40 ms old. The flusher runs as it
would in production and publishes to Redis database 3 (keys ``autoscaler:queue_time:v1:bench:*``,
deleted at the end); the arrival and ended-request buffers are emptied between timed rounds
(untimed) so that every timed call takes the normal append path rather than the overflow path.
The overhead includes the busy-time measurement (a second clock read per request, in
``end``). Time is this thread's CPU time (``time.thread_time_ns``), so that other processes on a
busy machine, and the flusher thread, do not count as middleware overhead; the flusher's own
cost per request is printed separately. Target: under 5 µs median overhead per request.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

from autoscaler.web import asgi, wire, wsgi
from autoscaler.web.publisher import busy_seconds, summarize

REDIS_URL = "redis://127.0.0.1:6379/3"
BATCH = 2000
ROUNDS = 200


def bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


async def bare_asgi(scope: Any, receive: Any, send: Any) -> None:
    return None


def per_request_ns(call: Callable[[], object], between: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(ROUNDS):
        between()  # untimed: empty the buffers so that every timed call takes the append path
        t0 = time.thread_time_ns()
        for _ in range(BATCH):
            call()
        out.append((time.thread_time_ns() - t0) / BATCH)
    return out


def compare(
    name: str, bare: Callable[[], object], wrapped: Callable[[], object], rec: Any
) -> float:
    def between() -> None:
        rec._buf.clear()
        rec._ended.clear()

    per_request_ns(bare, between)  # warm up
    per_request_ns(wrapped, between)
    b, w = [], []
    for _ in range(5):  # interleave so drift hits both alike
        b += per_request_ns(bare, between)
        w += per_request_ns(wrapped, between)
    overhead = (statistics.median(w) - statistics.median(b)) / 1000
    print(
        f"{name}: bare {statistics.median(b) / 1000:.2f} µs, with middleware "
        f"{statistics.median(w) / 1000:.2f} µs, median overhead {overhead:.2f} µs per request"
    )
    return overhead


def main() -> None:
    env = {"AUTOSCALER_PROCESS": "bench"}
    stamp = str(int(time.time() * 1000) - 40)  # stays plausible for the 10 minutes a run may take
    mw = wsgi.QueueTimeMiddleware(bare_wsgi, redis_url=REDIS_URL, env=env)
    environ = {"HTTP_X_REQUEST_START": stamp, "CONTENT_LENGTH": "", "REQUEST_METHOD": "GET"}

    def sr(*_: Any) -> None:
        return None

    wsgi_overhead = compare(
        "WSGI", lambda: bare_wsgi(environ, sr), lambda: mw(environ, sr), mw.recorder
    )

    amw = asgi.QueueTimeMiddleware(bare_asgi, redis_url=REDIS_URL, env=env)
    headers = [
        (b"host", b"example.com"),
        (b"user-agent", b"bench"),
        (b"accept", b"*/*"),
        (b"x-request-start", stamp.encode()),
    ]
    scope = {"type": "http", "headers": headers}

    async def noop(*_: Any) -> Any:
        return None

    def drive(app: Any) -> Callable[[], object]:
        def call() -> object:
            coro = app(scope, noop, noop)
            with contextlib.suppress(StopIteration):
                coro.send(None)  # the apps never await anything real: one step completes them
            return None

        return call

    asgi_overhead = compare("ASGI", drive(bare_asgi), drive(amw), amw.recorder)

    for rec in (mw.recorder, amw.recorder):
        assert rec is not None
        rec.stop()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{wire.PREFIX}bench:*"))
    slots = [wire.decode_slot(client.hgetall(k)) for k in keys if not k.endswith(b":seen")]
    if keys:
        client.delete(*keys)
    client.close()
    print(
        f"flusher published {sum(s.flushes for s in slots)} flush(es) holding "
        f"{sum(s.count for s in slots)} samples "
        f"({sum(s.drops.get('overflow', 0) for s in slots)} counted as overflow)"
    )
    arrivals = [(time.time(), stamp, None)] * 10_000
    t0 = time.thread_time_ns()
    summarize(arrivals, 100_000)
    per_sample = (time.thread_time_ns() - t0) / len(arrivals) / 1000
    print(f"flusher thread (off the request path): {per_sample:.2f} µs per arrival to aggregate")
    now = time.time()
    ended: list[tuple[float | None, float]] = [(now - 0.05, now - 0.01)] * 10_000
    t0 = time.thread_time_ns()
    busy_seconds(ended, [], now - 5.0, now)
    per_ended = (time.thread_time_ns() - t0) / len(ended) / 1000
    print(f"  and {per_ended:.2f} µs per ended request to sum the busy time")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    target = "met" if max(wsgi_overhead, asgi_overhead) < 5 else "NOT met"
    print(f"target < 5 µs median overhead: {target}")


if __name__ == "__main__":
    main()
