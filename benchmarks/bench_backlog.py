"""How deep the fast model lets one instance's queue grow, and what the policy reads of it.

    .venv/bin/python benchmarks/bench_backlog.py [--seed 1] [--days 2] [--only NAME,...]
        [--app TEXT] [--deep S] [--router-queue N]

The grid of ``bench_grid.py`` (the same traces, apps, SLO and bounds). Each cell replays
``default`` on the fast model, which routes every request to an instance on arrival and keeps
it in that instance's queue however long the queue grows (a platform's router would cap it and
refuse the rest: ``docs/simulator.md``, "The app model"). Per cell: the deepest queue one
instance held (requests, and the seconds of work that is for one instance), the ticks on which
the signal the policy read was above ten times the SLO while the requests arriving in that
minute kept their p95 within it (the window's p95 landing on requests queued at the instances
that took the overload: a wait no newly added instance can shorten), and the upscales decided
on those ticks. Only the cells whose deepest queue is at least ``--deep`` seconds of work are
printed (30 by default).

Figures are printed, never asserted. Left out: the exact model, the whole traces.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_grid as grid  # noqa: E402

from autoscaler.model import Action  # noqa: E402
from autoscaler.sim import baselines  # noqa: E402
from autoscaler.sim.runner import PolicySpec, replay  # noqa: E402


def cell(trace: str, app: grid.App) -> tuple[float, float, int, int]:
    """The deepest queue at one instance (requests, seconds of work), the ticks whose signal is
    above ten times the SLO while their minute's p95 is within it, and the upscales on them."""
    setup, prepared, low, high, engine, _ = grid.cell_setup(trace, app)
    with baselines.recording_decisions() as answers:
        result = replay(prepared, setup, PolicySpec("default", low, high, engine), series=True)
    deepest = result.deepest_queue or 0.0
    work = deepest * setup.service_ms / 1000.0 / setup.concurrency
    per_minute = max(1, round(60.0 / setup.interval_s))
    minutes = result.p95_series
    far = ups = 0
    for k, (decision, _) in enumerate(answers[: len(prepared.needs)]):
        signal, m = decision.signal_ms, k // per_minute
        far_off = signal is not None and signal > 10.0 * setup.slo_ms
        if far_off and m < len(minutes) and minutes[m] <= setup.slo_ms:
            far += 1
            ups += decision.action is Action.UP
    return deepest, work, far, ups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    grid.add_trace_options(parser)
    parser.add_argument("--app", default="", help="only the apps whose label contains this")
    parser.add_argument(
        "--deep", type=float, default=30.0, help="print cells whose deepest queue is this (s)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    grid.read_chosen_traces(args)
    print(f"the fast model's deepest queue at one instance, default policy; seed {args.seed}")
    shown = total = 0
    far_total = ups_total = 0
    for trace in grid._TRACES:
        for app in grid.apps(False):
            if args.app not in app.label:
                continue
            total += 1
            deepest, work, far, ups = cell(trace, app)
            far_total += far
            ups_total += ups
            if work < args.deep:
                continue
            shown += 1
            print(
                f"{trace:10s} {app.label:18s} deepest {deepest:9.0f} requests = {work:6.0f} s "
                f"of work; signal > 10x SLO in a minute within it: {far:4d} ticks, "
                f"{ups} upscales"
            )
    print(
        f"\n{shown} of {total} cells held {args.deep:g} s of work or more at one instance; "
        f"over all {total}: {far_total} ticks read above ten times the SLO in a minute within "
        f"it, {ups_total} upscales on them"
    )
    print(f"({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
