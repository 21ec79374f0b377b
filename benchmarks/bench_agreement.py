"""The fast model against the exact one on every generated traffic shape, the loop closed.

    .venv/bin/python benchmarks/bench_agreement.py [--peak 5] [--days 0.5] [--seeds 2]
        [--shapes flash10,bursty] [--jobs 2]

Each shape (``autoscaler.sim.scenarios``, seed 1) scaled to ``--peak`` instances at the
issue-7 app (boot 45 s, service 100 ms, 4 slots, SLO 200 ms), replayed by the default policy
(bounds 1..2 x peak + 2) on the fast and on the exact model, each feeding the policy its own
signal, over seeds 1..N of the noise (fast) and of the arrivals (exact). Prints, per shape, the
mean instance-hours and SLO minutes of each model, the ratio fast / exact and the difference in
points (the goal: within 10% and 1 point), and the spread over seeds. Leaves out the
baselines, other app shapes and other seeds of the shapes. The exact model is slow (about
200,000 requests a second): keep ``--peak`` and ``--days`` small.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoscaler.policy import PolicyConfig
from autoscaler.sim.runner import PolicySpec, Setup, prepare, replay
from autoscaler.sim.scenarios import SCENARIOS, generate


def run(job: tuple[str, float, float, int, bool]) -> tuple[float, float]:
    shape, peak, days, seed, exact = job
    high = int(2 * peak) + 2
    setup = Setup(peak_instances=peak, exact=exact, seed=seed)
    prepared = prepare(generate(shape, days=days, seed=1), setup)
    r = replay(prepared, setup, PolicySpec("default", 1, high, PolicyConfig(high=high)))
    return r.instance_hours, r.slo_attainment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peak", type=float, default=5.0)
    parser.add_argument("--days", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--shapes", default=",".join(SCENARIOS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    shapes = args.shapes.split(",")
    seeds = range(1, args.seeds + 1)
    jobs = [
        (s, args.peak, args.days, seed, exact) for s in shapes for exact in (0, 1) for seed in seeds
    ]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        out = dict(zip(jobs, pool.map(run, jobs, chunksize=1), strict=True))
    print(f"peak {args.peak:g}, {args.days:g} days, seeds 1..{args.seeds}: mean (spread) per model")
    print(
        f"{'shape':<10} {'fast h':>8} {'exact h':>8} {'ratio':>6} "
        f"{'fast SLO':>9} {'exact SLO':>9} {'pts':>6}"
    )
    worst_cost = worst_pts = 0.0
    for s in shapes:
        f = [out[(s, args.peak, args.days, seed, 0)] for seed in seeds]
        e = [out[(s, args.peak, args.days, seed, 1)] for seed in seeds]
        fh, eh = statistics.mean(h for h, _ in f), statistics.mean(h for h, _ in e)
        fs, es = statistics.mean(a for _, a in f), statistics.mean(a for _, a in e)
        spread = max(a for _, a in e) - min(a for _, a in e)
        ratio, pts = fh / eh, 100 * (fs - es)
        worst_cost, worst_pts = max(worst_cost, abs(ratio - 1)), max(worst_pts, abs(pts))
        print(
            f"{s:<10} {fh:8.1f} {eh:8.1f} {ratio:6.3f} {fs:9.2%} {es:9.2%} {pts:+6.2f}"
            f"  (exact SLO spread over seeds {100 * spread:.2f} pts)"
        )
    print(f"worst: cost {100 * worst_cost:.1f}% apart, SLO minutes {worst_pts:.2f} points apart")
    print(f"({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
