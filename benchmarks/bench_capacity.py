"""What one instance carries: the policy's learned capacity against what the oracle runs.

    .venv/bin/python benchmarks/bench_capacity.py [--seed 1] [--days 2] [--only NAME,...]
        [--app TEXT] [--router-queue N]

The grid of ``bench_grid.py`` (the same traces, apps, SLO and bounds). Each cell replays
``default``; on every tick on which what one instance carries is *sure*, its learned
``capacity`` (requests/s per instance at which the signal's p95 reaches ``UP_THRESHOLD``) is
divided by the rate per instance the boot-aware oracle's need table allows at that step (the
step's rate over the instances it needs, counted where it needs at least 3). A ratio of 1: the
policy sizes as the oracle does; above 1: the capacity it learned would run fewer instances
than the oracle, which keeps nearly every minute's p95 within the SLO. Per cell: the sure
ticks and the ratio's median, 10th and 90th percentiles.

Figures are printed, never asserted. Left out: the exact model, the whole traces.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_grid as grid  # noqa: E402

from autoscaler.sim import baselines  # noqa: E402
from autoscaler.sim.runner import PolicySpec, replay  # noqa: E402


def ratios(trace: str, app: grid.App) -> list[float]:
    """Per sure tick: the learned capacity over the oracle's rate per instance."""
    setup, prepared, low, high, engine, _ = grid.cell_setup(trace, app)
    with baselines.recording_decisions() as answers:
        replay(prepared, setup, PolicySpec("default", low, high, engine), series=False)
    rates, needs = prepared.steps.rates, prepared.needs
    out = []
    for k, (_, state) in enumerate(answers[: len(needs)]):
        need = needs[k]
        if state.sure and state.capacity and need >= 3 and rates[k] > 0.0:
            out.append(state.capacity / (rates[k] / need))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    grid.add_trace_options(parser)
    parser.add_argument("--app", default="", help="only the apps whose label contains this")
    args = parser.parse_args()
    started = time.perf_counter()
    grid.read_chosen_traces(args)
    print(f"learned capacity / the oracle's rate per instance, sure ticks; seed {args.seed}")
    by_slots: dict[int, list[float]] = {}
    for trace in grid._TRACES:
        for app in grid.apps(False):
            if args.app not in app.label:
                continue
            found = ratios(trace, app)
            if len(found) < 10:
                print(f"{trace:10s} {app.label:18s} nothing sure")
                continue
            tenths = statistics.quantiles(found, n=10)
            print(
                f"{trace:10s} {app.label:18s} {len(found):6d} sure ticks: median "
                f"{statistics.median(found):.2f}, p10 {tenths[0]:.2f}, p90 {tenths[-1]:.2f}"
            )
            by_slots.setdefault(app.concurrency, []).append(statistics.median(found))
    print()
    for slots, medians in sorted(by_slots.items()):
        print(
            f"{slots:3d} slots: {len(medians)} cells with something sure, their medians "
            f"{min(medians):.2f} to {max(medians):.2f} (median {statistics.median(medians):.2f})"
        )
    print(f"\n({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
