"""How the fast model's measured p95 spreads, against the exact model's, at a steady load.

    .venv/bin/python benchmarks/bench_signal_noise.py [--ticks 2000]

Four instances at a fixed load (requests at ``load x instances x slots / service time``),
100 ms exponential service times, a 30 s window read every 5 s: prints the 5th, 25th, 50th,
75th and 95th percentiles of the signal (the window's p95 queue time, ms) over ``--ticks``
ticks for both models, per number of slots and load. The forecast learns what an instance
carries from this signal near the top of the band, so its spread near capacity matters.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quantiles(values: list[float | None]) -> list[int]:
    ordered = sorted(v or 0.0 for v in values)
    return [round(ordered[int(p * len(ordered))]) for p in (0.05, 0.25, 0.5, 0.75, 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from autoscaler.sim.fast import FastModel, Queueing
    from autoscaler.sim.runner import ExactModel, Setup

    n, service = 4, 0.1
    print("slots  load   fast p5/p25/p50/p75/p95 (ms)     exact p5/p25/p50/p75/p95 (ms)")
    for slots, loads in ((4, (0.5, 0.6, 0.65, 0.7, 0.75)), (8, (0.5, 0.7)), (1, (0.3, 0.5, 0.7))):
        setup = Setup(concurrency=slots)
        queueing = Queueing(slots, 1.0)
        for load in loads:
            rates = [load * n * slots / service] * args.ticks
            fast = FastModel(
                rates,
                service,
                5.0,
                queueing=queueing,
                boot_s=45.0,
                slo_s=0.2,
                quantity=n,
                window_s=30.0,
                seed=3,
            )
            exact = ExactModel(rates, service, 5.0, setup=setup, boot_s=45.0, quantity=n)
            f = [fast.step(k, n)[0] for k in range(args.ticks)][6:]  # the window filled
            e = [exact.step(k, n)[0] for k in range(args.ticks)][6:]
            print(f"{slots:5}  {load:4.2f}   {quantiles(f)!s:30}   {quantiles(e)!s}", flush=True)


if __name__ == "__main__":
    main()
