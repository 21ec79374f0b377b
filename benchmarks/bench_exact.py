"""The fast model against the exact request-level model on days of the NASA month, closed loop.

    .venv/bin/python benchmarks/bench_exact.py --trace PATH [--from-day 10] [--days 3]
        [--seeds 1]

Prepares the whole trace as ``simulate`` does (``--peak-instances 20 --service-ms 100
--concurrency 4 --boot 45 --slo-ms 200``, bounds 1..40), then replays the chosen days with the
default configuration's policy and with the oracle on both models. Each model feeds the policy
its own signal (the exact model: the p95 of the requests that started in the window, drawn as a
Poisson process), so the forecast learns what an instance carries from each model's own noise.
Prints SLO attainment, instance-hours and the cost against the oracle per model and seed, and
the run time. Figures are printed, never asserted. The exact model takes about a minute per
simulated day on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY_STEPS = 17_280  # 5 s ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trace", type=Path, required=True, help="the NASA July 1995 month, per second (CSV)"
    )
    parser.add_argument("--from-day", type=float, default=10.0)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    if not args.trace.is_file():
        sys.exit(f"trace not found: {args.trace} (pass --trace PATH)")
    sys.path.insert(0, str(ROOT))
    from autoscaler.config import load
    from autoscaler.policy import PolicyConfig
    from autoscaler.sim.runner import PolicySpec, Setup, prepare, replay
    from autoscaler.sim.traces import read_trace

    setup = Setup(peak_instances=20, boot_s=45)
    prepared = prepare(read_trace(args.trace), setup)
    start = int(args.from_day * DAY_STEPS)
    stop = int((args.from_day + args.days) * DAY_STEPS)
    web = PolicyConfig.from_settings(load({}).processes["web"]).replace(high=40)
    print(f"{args.trace.name}, days {args.from_day:g} to {args.from_day + args.days:g}")
    print("model  seed  SLO minutes  inst-hours  oracle  cost  seconds")
    for seed in range(1, args.seeds + 1):
        for exact in (False, True):
            s = dataclasses.replace(setup, exact=exact, seed=seed)
            started = time.perf_counter()
            d = replay(prepared, s, PolicySpec("default", 1, 40, web), start=start, stop=stop)
            o = replay(prepared, s, PolicySpec("oracle", 1, 40), start=start, stop=stop)
            took = time.perf_counter() - started
            print(
                f"{'exact' if exact else 'fast':6} {seed:4}  {d.slo_attainment:10.2%}  "
                f"{d.instance_hours:10.1f}  {o.instance_hours:6.1f}  "
                f"{d.instance_hours / o.instance_hours:4.2f}x  {took:7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
