"""How many SLO minutes reacting can keep: the default policy against an *ideal reactor*.

    .venv/bin/python benchmarks/bench_reactor.py [--seed 1] [--days 2] [--jobs 2] [--only NAME,...]
        [--base] [--no-spare] [--wc98 PATH] [--nasa PATH] [--router-queue N] [--json FILE]

The grid of ``bench_grid.py`` (the same traces, apps, SLO and bounds; ``--base`` the base app
only, ``--wc98``/``--nasa`` whole traces instead of the slices). Beside ``default`` and
the boot-aware ``oracle`` it replays two references that know the per-step need exactly
(the oracle's need table) but never the future: at the end of each step the *reactor* asks for
the most instances any of the last ``hold`` steps needed (``reactor`` holds one step: the need
of the step just over; ``reactor5m`` holds 300 s, as HPA's stabilisation window does) and,
like every policy but ``bound``, waits the boot for what it adds. No policy that learns the
load from what it reads can know the need sooner or better, so where the reactor's SLO minutes
fall more than a point below the oracle's, the issue's SLO goal is out of reach for a policy
that reacts, unless it keeps spare capacity for the jump (which costs what the reactor does
not pay). The benchmark says, per cell and in a summary, how far ``default`` is from each.

Then the *spared* reactors (unless ``--no-spare``): the same with spare capacity on top of
what they saw (``SPARES``: a share more, or instances added) and each hold of
``SPARE_HOLDS``; per cell, the cheapest reactor (spared or not) that keeps the SLO goal, and
over the cells the median of that cost: what a policy that knew the need as soon as it was
over, and the spare each cell needs (chosen per cell, in hindsight), would pay.

Figures are printed, never asserted. Left out: the exact model, other seeds (``--seed`` picks
one), spare that changes over time (``default``'s forecast does), spares between those listed.
"""

from __future__ import annotations

import argparse
import json
import math
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
#: the spare capacity the spared reactors keep on top of what they saw (unless
#: ``--no-spare``): a share of it (``x1.2``: 20% more, rounded up) or instances added
#: (``+2``), each with every hold of ``SPARE_HOLDS``; per cell, the cheapest of them that
#: keeps the SLO goal is reported
SPARES = ("x1.1", "x1.2", "x1.3", "x1.5", "x1.75", "x2", "x2.5", "x3", "+1", "+2", "+3", "+5")
SPARE_HOLDS = {"": 0.0, "1m": 60.0, "5m": 300.0}


def lookbehind_max(needs: list[int], hold: int) -> list[int]:
    """``out[k] = max(needs[k - hold : k])`` (``needs[0]`` at ``k = 0``): what a policy called
    at the end of step ``k - 1`` has seen of the last ``hold`` steps."""
    out = [needs[0]] * len(needs)
    for k in range(1, len(needs)):
        out[k] = max(needs[max(0, k - hold) : k])
    return out


class ReactorSpec:
    """A ``PolicySpec``-like builder of the ideal reactor (``replay`` asks it to ``build``)."""

    def __init__(self, name: str, hold_s: float, low: int, high: int, spare: str = "x1") -> None:
        self.name, self.hold_s, self.low, self.high = name, hold_s, low, high
        self.spare = spare
        # the spare, read once: instances added, or the share asked for (1: none)
        self._added = int(spare[1:]) if spare.startswith("+") else 0
        self._share = 1.0 if self._added else float(spare[1:])

    def padded(self, seen: int) -> int:
        """What it asks for having seen a need of ``seen``: that plus its spare."""
        if self._added:
            return seen + self._added
        return math.ceil(seen * self._share - 1e-9)

    def build(self, prepared: Prepared, setup: Setup, start: int = 0) -> OraclePolicy:
        dt = prepared.steps.dt
        needs = prepared.needs[start:]
        policy = OraclePolicy(needs, dt, self.low, self.high, name=self.name)
        seen = lookbehind_max(needs, max(1, round(self.hold_s / dt)))
        unspared = not self._added and self._share == 1.0
        policy.wants = seen if unspared else [self.padded(w) for w in seen]
        policy.wants[0] = start_need(prepared, setup, start)  # as every policy starts (replay)
        return policy


def spared(low: int, high: int) -> list[ReactorSpec]:
    """The spared reactors: every spare of ``SPARES`` with every hold of ``SPARE_HOLDS``."""
    return [
        ReactorSpec(f"reactor{hold_name}{spare}", hold, low, high, spare)
        for spare in SPARES
        for hold_name, hold in SPARE_HOLDS.items()
    ]


def run_cell(args: tuple[str, grid.App, bool]) -> dict[str, Any]:
    trace_name, app, with_spares = args
    setup, prepared, low, high, engine, _ = grid.cell_setup(trace_name, app)
    specs: list[Any] = [PolicySpec("default", low, high, engine), PolicySpec("oracle", low, high)]
    specs += [ReactorSpec(name, hold, low, high) for name, hold in HOLDS.items()]
    spares = spared(low, high) if with_spares else []
    rows = {}
    for spec in specs + spares:
        r = replay(prepared, setup, spec, series=False)
        rows[spec.name] = {"hours": r.instance_hours, "slo": r.slo_attainment}
    for row in rows.values():
        row["cost"] = row["hours"] / (rows["oracle"]["hours"] or 1e-9)
    cell: dict[str, Any] = {"trace": trace_name, "app": app.label, "policies": rows}
    if with_spares:
        # the cheapest reactor, spared or not, that keeps the SLO goal (None: none of them)
        names = [*HOLDS, *(s.name for s in spares)]
        keeping = [n for n in names if within(cell, n)]
        cell["cheapest"] = min(keeping, key=lambda n: rows[n]["hours"]) if keeping else None
    return cell


def within(cell: dict[str, Any], name: str) -> bool:
    """``name`` keeps SLO minutes within the issue's point of the oracle's."""
    rows = cell["policies"]
    return bool(rows[name]["slo"] >= rows["oracle"]["slo"] - grid.GOAL_POINTS)


def spare_summary(cells: list[dict[str, Any]]) -> list[str]:
    """Per cell, the cost of the cheapest reactor that keeps the SLO goal, and over the cells
    its median and how many such costs are within the issue's bounds."""
    lines = ["", "the cheapest reactor keeping the SLO goal, per cell (spared or not):"]
    costs = []
    for c in cells:
        rows, best = c["policies"], c["cheapest"]
        cost = rows[best]["cost"] if best else math.inf
        costs.append(cost)
        shown = f"{best} {cost:.2f}x {100 * rows[best]['slo']:.2f}%" if best else "none"
        lines.append(
            f"  {c['trace']:<10} {c['app']:<18} {shown:<32} default {rows['default']['cost']:.2f}x"
        )
    n = len(costs)
    lines.append(
        f"over {n} cells: median {statistics.median(costs):.3f}x "
        f"(goal <= {grid.GOAL_MEDIAN}x), at most {grid.GOAL_MEDIAN}x in "
        f"{sum(x <= grid.GOAL_MEDIAN for x in costs)}, at most {grid.GOAL_COST}x in "
        f"{sum(x <= grid.GOAL_COST for x in costs)}, none of them keeps it in "
        f"{sum(x == math.inf for x in costs)}"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    grid.add_trace_options(parser)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--base", action="store_true", help="the base app only (the issue-7 model's)"
    )
    parser.add_argument(
        "--no-spare",
        action="store_true",
        help="leave out the spared reactors (the cheapest reactor keeping the SLO goal)",
    )
    parser.add_argument("--json", type=Path, help="also write the cells as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    grid.read_chosen_traces(args)
    apps = [a for a in grid.apps(False) if a.is_base or not args.base]
    jobs = [(t, a, not args.no_spare) for t in grid._TRACES for a in apps]
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
    if not args.no_spare:
        print("\n".join(spare_summary(cells)))
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))
    print(f"\n({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
