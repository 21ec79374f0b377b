"""Where the default policy's instance-hours beyond the boot-aware oracle go, per tick.

    .venv/bin/python benchmarks/bench_excess.py [--seed 1] [--days 2] [--only NAME,...]
        [--app TEXT] [--min-cost X] [--top N] [--router-queue N]

The grid of ``bench_grid.py`` (the same traces, apps, SLO and bounds). Each cell replays
``default`` and the boot-aware ``oracle``; on every tick on which ``default`` runs more
instances than the oracle runs over the next step, the difference is counted against the
decision that set the formation for that step: its reason (the rule that sized or held it) and
what was learned of what one instance carries then (``sure``, only a ``floor``, or ``none``).
Per cell the instance-hours beyond the oracle's and the three biggest (reason, learned)
shares; then the sum over the cells shown, and how much of what ``in_band`` holds lies above
the stabilisation window's highest recommendation (what a downscale to it inside the band would
shed). Steps on which ``default`` runs fewer than the oracle are not counted (they are the SLO
minutes' side).

``--min-cost 1.6`` shows only the cells whose cost is above the issue's goal. Figures are
printed, never asserted. Left out: the exact model, the whole traces (``autoscaler simulate``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_grid as grid  # noqa: E402

from autoscaler.policy import sizing  # noqa: E402
from autoscaler.sim import baselines  # noqa: E402
from autoscaler.sim.runner import PolicySpec, replay  # noqa: E402

Key = tuple[str, str]  # (reason, what was learned)


def learned(state: Any) -> str:
    """``sure``, ``floor`` (a capacity or a load carried quietly, not sure) or ``none``."""
    if state.sure:
        return "sure"
    return "floor" if state.capacity is not None or state.quiet is not None else "none"


def excess(trace: str, app: grid.App) -> tuple[float, float, Counter[Key], float]:
    """The cell's default and oracle instance-hours, the instance-hours beyond the oracle's per
    (reason, learned), and of those held ``in_band`` the part above the stabilisation window's
    highest recommendation."""
    setup, prepared, low, high, engine, _ = grid.cell_setup(trace, app)
    # the engine's decisions, as the replay makes them
    with baselines.recording_decisions() as answers:
        run = replay(prepared, setup, PolicySpec("default", low, high, engine), series=False)
    # per tick: desired, reason, learned, the window's highest recommendation
    ticks = [
        (
            d.desired,
            d.reason.value,
            learned(state),
            sizing.highest(state.window)[0] if state.window else d.desired,
        )
        for d, state in answers
    ]
    oracle = replay(prepared, setup, PolicySpec("oracle", low, high), series=False)
    ahead = baselines.boot_steps(setup.boot_s, prepared.steps.dt)
    wants = baselines.lookahead_max(prepared.needs, ahead)
    by: Counter[Key] = Counter()
    above = 0.0
    hour = prepared.steps.dt / 3600.0
    # the decision at the end of step k sets the formation of step k + 1, where the oracle
    # runs what it wants at that time
    for k, (desired, reason, kind, recommended) in enumerate(ticks[:-1]):
        over = desired - min(high, max(low, wants[k + 1]))
        if over > 0:
            by[reason, kind] += over * hour
            if reason == "in_band" and desired > recommended:
                above += min(over, desired - recommended) * hour
    return run.instance_hours, oracle.instance_hours, by, above


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    grid.add_trace_options(parser)
    parser.add_argument("--app", default="", help="only the apps whose label contains this")
    parser.add_argument("--min-cost", type=float, default=0.0, help="only cells above this cost")
    parser.add_argument("--top", type=int, default=12, help="rows of the summary")
    args = parser.parse_args()
    started = time.perf_counter()
    grid.read_chosen_traces(args)
    print(
        f"default's instance-hours beyond the boot-aware oracle, per tick, by the decision's "
        f"reason and what was learned; seed {args.seed}, {args.days:g} days"
    )
    total: Counter[Key] = Counter()
    cells = 0
    above_total = 0.0
    for trace in grid._TRACES:
        for app in grid.apps(False):
            if args.app not in app.label:
                continue
            hours, oracle, by, above = excess(trace, app)
            cost = hours / (oracle or 1e-9)
            if cost <= args.min_cost:
                continue
            beyond = sum(by.values()) or 1e-9
            top = ", ".join(
                f"{reason}/{kind} {h / beyond:.0%}" for (reason, kind), h in by.most_common(3)
            )
            print(
                f"{trace:10s} {app.label:18s} {cost:5.2f}x {hours:8.1f} h, "
                f"{beyond:7.1f} h beyond: {top}"
            )
            total.update(by)
            above_total += above
            cells += 1
    beyond = sum(total.values()) or 1e-9
    print(f"\n{cells} cells, {beyond:.0f} instance-hours beyond the oracle:")
    for (reason, kind), h in total.most_common(args.top):
        print(f"  {reason:16s} {kind:6s} {h:9.1f} h  {h / beyond:6.1%}")
    in_band = sum(h for (reason, _), h in total.items() if reason == "in_band")
    print(
        f"  of the {in_band:.1f} h held in_band, {above_total:.1f} h above the stabilisation "
        f"window's highest recommendation"
    )
    print(f"\n({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
