"""Leader-lock figures on this machine: the cost of each lock call the loop makes per tick, and
how long a takeover takes after the holder is killed with SIGKILL.

    .venv/bin/python benchmarks/bench_locks.py

Uses the local Redis (database 8) and PostgreSQL (schema ``t_lock_bench``), and cleans up.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoscaler.locks.postgres import PostgresLock, PostgresLockConfig
from autoscaler.locks.redis import RedisLock, RedisLockConfig

REDIS_URL = "redis://127.0.0.1:6379/8"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
NAME = "t_lock_bench"
N = 2000
TTL = 3.0


def timed(call: Callable[[], object], n: int = N) -> str:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    p50, p99 = samples[len(samples) // 2], samples[int(len(samples) * 0.99)]
    return f"p50 {p50:7.0f} us  p99 {p99:7.0f} us  (n={n})"


HOLDER = """
import sys, time
from autoscaler.locks.{mod} import {cls}, {cfg}
lock = {cls}({cfg}({args}))
assert lock.acquire() is not None
print("held", flush=True)
time.sleep(600)
"""


def takeover(mod: str, cls: str, cfg: str, args: str, make: Callable[[], object]) -> float:
    """Seconds from SIGKILL of a holder process to another lock's successful acquire."""
    code = HOLDER.format(mod=mod, cls=cls, cfg=cfg, args=args)
    root = Path(__file__).resolve().parents[1]
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    lock = make()
    assert lock.acquire() is None  # type: ignore[attr-defined]
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()
    while (lease := lock.acquire()) is None:  # type: ignore[attr-defined]
        time.sleep(0.01)
    took = time.monotonic() - killed
    lock.release(lease)  # type: ignore[attr-defined]
    lock.close()  # type: ignore[attr-defined]
    return took


def main() -> None:
    versions = f"redis-py {redis.__version__}, psycopg {psycopg.__version__}"
    print(f"python {sys.version.split()[0]}, {versions}")
    rl = RedisLock(RedisLockConfig(REDIS_URL, NAME, TTL))
    lease = rl.acquire()
    assert lease is not None
    print(f"redis    acquire/renew (one Lua call): {timed(rl.acquire)}")
    lease = rl.acquire()
    print(f"redis    valid (no I/O):               {timed(lambda: rl.valid(lease))}")
    rl.release(lease)
    rl.close()

    pl = PostgresLock(PostgresLockConfig(DATABASE_URL, NAME, NAME))
    lease = pl.acquire()
    assert lease is not None
    print(f"postgres acquire/renew (one query):    {timed(pl.acquire)}")
    print(f"postgres valid (one query):            {timed(lambda: pl.valid(lease))}")
    pl.release(lease)
    pl.close()

    runs = 3
    r_args = f"{REDIS_URL!r}, {NAME!r}, {TTL}"
    red = [
        takeover("redis", "RedisLock", "RedisLockConfig", r_args,
                 lambda: RedisLock(RedisLockConfig(REDIS_URL, NAME, TTL)))
        for _ in range(runs)
    ]  # fmt: skip
    p_args = f"{DATABASE_URL!r}, {NAME!r}, {NAME!r}"
    pgs = [
        takeover("postgres", "PostgresLock", "PostgresLockConfig", p_args,
                 lambda: PostgresLock(PostgresLockConfig(DATABASE_URL, NAME, NAME)))
        for _ in range(runs)
    ]  # fmt: skip
    print(
        f"takeover after kill -9, redis (TTL {TTL:g}s): "
        + ", ".join(f"{t:.2f}s" for t in red)
        + f"  (median {statistics.median(red):.2f}s; polled every 10 ms, the daemon polls once "
        "per interval)"
    )
    print(
        "takeover after kill -9, postgres:        "
        + ", ".join(f"{t:.3f}s" for t in pgs)
        + f"  (median {statistics.median(pgs):.3f}s)"
    )
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(f"{{{NAME}}}:lease", f"{{{NAME}}}:epoch")
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {NAME} CASCADE")


if __name__ == "__main__":
    main()
