"""Generated job traces (seeded): the shapes of work a worker process meets, for the worker grid
and for anyone who wants to try a policy on them.

``python -m autoscaler.sim.jobshapes NAME [--seed 1] [--days 2] > jobs.csv`` writes one as a job
trace (``time,duration_s,queue``) that ``autoscaler simulate --trace`` reads.

Shapes (rates and durations are absolute; every one starts on a Monday at 00:00 UTC):

- ``trickle``: a steady Poisson trickle, one job every 4 s, durations exponential with mean 5 s.
- ``cron``: hourly cron bursts, 3,000 jobs enqueued in the first second of every hour (mean 1 s,
  spread 0.5), over a trickle of one job every 20 s.
- ``heavy``: heavy-tailed durations, log-normal with median 2 s and p99 200 s (100x), one job
  every 5 s.
- ``retry``: retry storms: a trickle of one job every 2 s (mean 3 s) and, three times a day, a
  20-minute outage of what the jobs call: every job then fails after 0.5 s and is retried with
  exponential backoff (15 s, 30 s, 60 s, 120 s, 240 s), the attempt after the outage succeeds.
- ``nightly``: a nightly batch, 20,000 jobs (mean 2 s, spread 0.5) enqueued at 02:00 on the
  ``batch`` queue, over a trickle of one job every 10 s on ``default`` (first seen, so first
  served).
- ``idle``: long idle periods: four 30-minute busy spells a day at random hours (a job every 3 s,
  mean 4 s) and nothing in between, so workers can go to zero and must come back.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from autoscaler.sim.jobs import JobTrace

START = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday
DAY = 86400.0


def _poisson(rng: random.Random, rate: float, start: float, end: float) -> list[float]:
    out = []
    t = start + rng.expovariate(rate)
    while t < end:
        out.append(t)
        t += rng.expovariate(rate)
    return out


def _gamma(rng: random.Random, mean: float, cv: float) -> float:
    shape = 1.0 / (cv * cv)
    return rng.gammavariate(shape, mean / shape)


Row = tuple[float, float, str]


def trickle(rng: random.Random, days: float) -> list[Row]:
    return [(t, rng.expovariate(1 / 5.0), "default") for t in _poisson(rng, 0.25, 0, days * DAY)]


def cron(rng: random.Random, days: float) -> list[Row]:
    rows = [(t, _gamma(rng, 1.0, 0.5), "default") for t in _poisson(rng, 0.05, 0, days * DAY)]
    for hour in range(int(days * 24)):
        at = hour * 3600.0
        rows += [(at + rng.random(), _gamma(rng, 1.0, 0.5), "default") for _ in range(3000)]
    return rows


def heavy(rng: random.Random, days: float) -> list[Row]:
    sigma = math.log(100.0) / 2.3263  # p99 / median = 100
    return [
        (t, 2.0 * math.exp(rng.gauss(0.0, sigma)), "default")
        for t in _poisson(rng, 0.2, 0, days * DAY)
    ]


def retry(rng: random.Random, days: float) -> list[Row]:
    outages = []
    for day in range(math.ceil(days)):
        for _ in range(3):
            start = day * DAY + rng.random() * (DAY - 1200.0)
            outages.append((start, start + 1200.0))

    def down(t: float) -> bool:
        return any(a <= t < b for a, b in outages)

    rows: list[Row] = []
    for t in _poisson(rng, 0.5, 0, days * DAY):
        at, backoff = t, 15.0
        while down(at) and backoff <= 240.0:
            rows.append((at, 0.5, "default"))  # fails fast
            at += 0.5 + backoff
            backoff *= 2
        rows.append((at, rng.expovariate(1 / 3.0), "default"))
    return [r for r in rows if r[0] < days * DAY]


def nightly(rng: random.Random, days: float) -> list[Row]:
    rows = [(t, rng.expovariate(1 / 2.0), "default") for t in _poisson(rng, 0.1, 0, days * DAY)]
    for day in range(math.ceil(days)):
        at = day * DAY + 7200.0
        if at < days * DAY:
            rows += [(at + rng.random(), _gamma(rng, 2.0, 0.5), "batch") for _ in range(20_000)]
    return rows


def idle(rng: random.Random, days: float) -> list[Row]:
    rows: list[Row] = []
    for day in range(math.ceil(days)):
        for hour in sorted(rng.sample(range(24), 4)):
            start = day * DAY + hour * 3600.0 + rng.random() * 1800.0
            rows += [
                (t, rng.expovariate(1 / 4.0), "default")
                for t in _poisson(rng, 1 / 3.0, start, start + 1800.0)
            ]
    return [r for r in rows if r[0] < days * DAY]


SHAPES: dict[str, Callable[[random.Random, float], list[Row]]] = {
    "trickle": trickle,
    "cron": cron,
    "heavy": heavy,
    "retry": retry,
    "nightly": nightly,
    "idle": idle,
}


def generate(name: str, *, seed: int = 1, days: float = 2.0) -> JobTrace:
    """The shape ``name`` over ``days``, drawn with ``seed``."""
    if name not in SHAPES:
        raise ValueError(f"unknown job shape {name!r} (one of {', '.join(SHAPES)})")
    rows = sorted(SHAPES[name](random.Random(f"{name}:{seed}"), days), key=lambda r: r[0])
    queues: dict[str, int] = {}
    for _, _, q in rows:  # in order of first appearance, as the trace reader does
        queues.setdefault(q, len(queues))
    return JobTrace(
        f"{name} (seed {seed})",
        START,
        [t for t, _, _ in rows],
        [d for _, d, _ in rows],
        [queues[q] for _, _, q in rows],
        list(queues),
    )


def to_csv(trace: JobTrace) -> str:
    lines = ["time,duration_s,queue"]
    for t, d, q in zip(trace.arrivals, trace.durations, trace.queue_ids, strict=True):
        lines.append(f"{trace.start + t:.3f},{d:.3f},{trace.queues[q]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoscaler.sim.jobshapes")
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=float, default=2.0)
    args = parser.parse_args(argv)
    sys.stdout.write(to_csv(generate(args.shape, seed=args.seed, days=args.days)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
