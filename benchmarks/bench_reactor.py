"""How many SLO minutes reacting can keep: the default policy against an *ideal reactor*.

    .venv/bin/python benchmarks/bench_reactor.py [--seed 1] [--days 2] [--jobs 2] [--only NAME,...]
        [--json FILE]

The grid of ``bench_grid.py`` (the same traces, apps, SLO and bounds). Beside ``default`` and
the boot-aware ``oracle`` it replays two references that know the per-step need exactly
(the oracle's need table) but never the future: at the end of each step the *reactor* asks for
the most instances any of the last ``hold`` steps needed (``reactor`` holds one step: the need
of the step just over; ``reactor5m`` holds 300 s, as HPA's stabilisation window does) and,
like every policy but ``bound``, waits the boot for what it adds. No policy that learns the
load from what it reads can know the need sooner or better, so where the reactor's SLO minutes
fall more than a point below the oracle's, the issue's SLO goal is out of reach for a policy
that reacts, unless it keeps spare capacity for the jump (which costs what the reactor does
not pay). The benchmark says, per cell and in a summary, how far ``default`` is from each.

Figures are printed, never asserted. Left out: the exact model, other seeds (``--seed`` picks
one), a reactor that keeps spare capacity (that is what ``default``'s forecast does).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_grid as grid  # noqa: E402

from autoscaler.sim.baselines import OraclePolicy  # noqa: E402
from autoscaler.sim.runner import PolicySpec, Prepared, Setup, replay, start_need  # noqa: E402

HOLDS = {"reactor": 0.0, "reactor5m": 300.0}  # seconds held (0: the step just over)


def lookbehind_max(needs: list[int], hold: int) -> list[int]:
    """``out[k] = max(needs[k - hold : k])`` (``needs[0]`` at ``k = 0``): what a policy called
    at the end of step ``k - 1`` has seen of the last ``hold`` steps."""
    out = [needs[0]] * len(needs)
    for k in range(1, len(needs)):
        out[k] = max(needs[max(0, k - hold) : k])
    return out


class ReactorSpec:
    """A ``PolicySpec``-like builder of the ideal reactor (``replay`` asks it to ``build``)."""

    def __init__(self, name: str, hold_s: float, low: int, high: int) -> None:
        self.name, self.hold_s, self.low, self.high = name, hold_s, low, high

    def build(self, prepared: Prepared, setup: Setup, start: int = 0) -> OraclePolicy:
        dt = prepared.steps.dt
        needs = prepared.needs[start:]
        policy = OraclePolicy(needs, dt, self.low, self.high, name=self.name)
        policy.wants = lookbehind_max(needs, max(1, round(self.hold_s / dt)))
        policy.wants[0] = start_need(prepared, setup, start)  # as every policy starts (replay)
        return policy


def run_cell(args: tuple[str, grid.App]) -> dict[str, Any]:
    trace_name, app = args
    setup, prepared, low, high, engine, _ = grid.cell_setup(trace_name, app)
    specs: list[Any] = [PolicySpec("default", low, high, engine), PolicySpec("oracle", low, high)]
    specs += [ReactorSpec(name, hold, low, high) for name, hold in HOLDS.items()]
    rows = {}
    for spec in specs:
        r = replay(prepared, setup, spec, series=False)
        rows[spec.name] = {"hours": r.instance_hours, "slo": r.slo_attainment}
    for row in rows.values():
        row["cost"] = row["hours"] / (rows["oracle"]["hours"] or 1e-9)
    return {"trace": trace_name, "app": app.label, "policies": rows}


def within(cell: dict[str, Any], name: str) -> bool:
    """``name`` keeps SLO minutes within the issue's point of the oracle's."""
    rows = cell["policies"]
    return bool(rows[name]["slo"] >= rows["oracle"]["slo"] - grid.GOAL_POINTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=2.0, help="length of generated shapes")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated shapes")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", default="", help="comma-separated traces/shapes to run")
    parser.add_argument("--json", type=Path, help="also write the cells as JSON")
    args = parser.parse_args()
    only = {x for x in args.only.split(",") if x}
    started = time.perf_counter()
    grid.read_traces(
        only,
        wc98=grid.SLICES / "wc98-slice-6h.csv",
        nasa=grid.SLICES / "nasa-slice-2h.csv.gz",
        days=args.days,
        seed=args.seed,
    )
    jobs = [(t, a) for t in grid._TRACES for a in grid.apps(False)]
    names = ("default", "oracle", *HOLDS)
    print(f"{len(jobs)} cells, fast model, seed {args.seed}; cost x boot-aware oracle")
    print(f"{'trace':<10} {'app':<18}" + "".join(f" {n:>15}" for n in names))
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        cells = pool.map(run_cell, jobs)
    for c in cells:
        rows = c["policies"]
        print(
            f"{c['trace']:<10} {c['app']:<18}"
            + "".join(f" {rows[n]['cost']:5.2f}x {100 * rows[n]['slo']:6.2f}%" for n in names)
        )
    print()
    points = f"{100 * grid.GOAL_POINTS:g}"
    print(f"SLO minutes within {points} point of the oracle's, cells of {len(cells)}:")
    for name in ("default", *HOLDS):
        print(f"  {name:<10} {sum(within(c, name) for c in cells)}")
    missed = [c for c in cells if not within(c, "default")]
    for name in HOLDS:
        reach = [c for c in missed if within(c, name)]
        gaps = [
            100 * (c["policies"][name]["slo"] - c["policies"]["default"]["slo"]) for c in missed
        ]
        print(
            f"of the {len(missed)} cells where default misses it, {name} keeps it in "
            f"{len(reach)} ({', '.join(c['trace'] + ' ' + c['app'] for c in reach) or 'none'}); "
            f"{name} minus default there: median {statistics.median(gaps) if gaps else 0:+.2f} "
            f"points, max {max(gaps) if gaps else 0:+.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))
    print(f"\n({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
