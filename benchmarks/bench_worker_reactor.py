"""How many SLO minutes reacting can keep for workers: the default worker policy against an
*ideal reactor*.

    .venv/bin/python benchmarks/bench_worker_reactor.py --jobs-log PATH [--seed 1] [--days 2]
        [--jobs 2] [--only NAME] [--json FILE]

The cells of ``bench_worker_grid.py`` (the job log at three duration scales and every generated
job shape, crossed with 1/5/25 slots and a 10/45/120 s boot; the same SLO, band and bounds).
Beside ``default`` and the boot-aware ``oracle`` it replays two references that know the
oracle's per-tick plan (the fewest instances that start every due job within the SLO, durations
known) but never the future: at each tick the *reactor* asks for the most instances any of the
last ``hold`` ticks' plan needed (``reactor`` holds one tick: the need of the tick just over;
``reactor5m`` holds 300 s) and, like ``default``, waits the boot for what it adds. Both have the
oracle's privilege of stopping only idle instances (no job is interrupted, no downscale is
refused), so they are the most that reacting can keep. Where the reactor's SLO minutes fall
below the worker goal (99%), that goal is out of reach for a policy that only reacts, unless it
keeps spare instances (which costs what the reactor does not pay).

Figures are printed, never asserted. Left out: other seeds (``--seed`` picks one); a reactor
that keeps spare instances. The job log is public, not part of the project (its source:
``tests/data/traces/README.md``): ``--jobs-log`` gives its path.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_worker_grid as grid  # noqa: E402

from autoscaler.sim.jobmodel import WorkerModel  # noqa: E402
from autoscaler.sim.workersim import WorkerSpec, fewest_slots, replay_jobs  # noqa: E402

HOLDS = {"reactor": 0.0, "reactor5m": 300.0}  # seconds held (0: the tick just over)
GOAL = grid.SLO_ATTAINMENT


def need_now(model: WorkerModel, t: float, slo_s: float) -> int:
    """The fewest instances that would start every job due at ``t`` within the SLO (or at once,
    for one already late) if they all served now, given when the running jobs end (durations
    known): the oracle's rule on what has arrived, nothing of the future; never fewer than the
    instances booting or running a job."""
    c = model.concurrency
    ends = [j.start + j.duration for inst in model.alive for j in inst.jobs]
    waiting = [j for q in model.queues for j in q]  # in the order free slots take them
    # it never stops an instance that boots or runs a job (it cannot know the need sooner)
    keep = sum(1 for inst in model.alive if inst.jobs or not inst.ready)
    if not waiting:
        return max(keep, math.ceil(len(ends) / c))
    # each starts now at the soonest, by its deadline or at once where it is already late
    jobs = [(t, max(job.due + slo_s, t), job.duration) for job in waiting]
    # hi: every due job starts now
    lo = fewest_slots(ends, t, jobs, len(ends) + 1, len(ends) + len(waiting))
    return max(keep, math.ceil(lo / c))


class Reactor:
    """At each tick, the most that ``need_now`` asked for over the last ``hold`` ticks (this
    one included), within the bounds; it pays the boot for what it adds."""

    def __init__(self, name: str, dt: float, hold: int, slo_s: float, high: int) -> None:
        self.name, self.dt, self.hold, self.slo_s, self.high = name, dt, hold, slo_s, high
        self.recent: deque[tuple[int, int]] = deque()  # (tick, need), needs decreasing
        self.model: WorkerModel | None = None

    def attach(self, model: WorkerModel) -> None:
        self.model = model

    def __call__(self, t: float, current: int, age_ms: float, depth: int, busy: int) -> int:
        assert self.model is not None
        k = round(t / self.dt) - 1
        need = need_now(self.model, t, self.slo_s)
        recent = self.recent
        while recent and recent[-1][1] <= need:
            recent.pop()
        recent.append((k, need))
        while recent[0][0] <= k - self.hold:
            recent.popleft()
        return min(self.high, recent[0][1])

    def hold_until(self, k: int, current: int, busy: int) -> float:
        if busy:
            return k  # a job's end may lower the need: ask every tick
        # nothing runs or waits: the need is 0 until a job arrives, the want falls to 0 when
        # the last need above 0 leaves the window
        top = [kk for kk, need in self.recent if need > 0]
        if current == 0 or not top:
            return math.inf if current == 0 else k
        return max(k, top[-1] + self.hold - 1)


def run_cell(cell: tuple[str, int, float]) -> dict[str, Any]:
    name, concurrency, boot = cell
    trace, setup, plan, high, cfg = grid.cell_setup(name, concurrency, boot)
    slo_s = setup.slo_ms / 1000.0
    rows: dict[str, dict[str, float]] = {}
    for spec in (WorkerSpec("default", 0, high, cfg), WorkerSpec("oracle", 0, high)):
        r = replay_jobs(trace, setup, spec, plan, series=False)
        rows[spec.name] = {"hours": r.instance_hours, "slo": r.slo_attainment}
    for label, hold_s in HOLDS.items():
        hold = max(1, round(hold_s / setup.interval_s))
        policy = Reactor(label, setup.interval_s, hold, slo_s, high)
        r = replay_jobs(
            trace,
            setup,
            WorkerSpec(label, 0, high),
            plan,
            series=False,
            policy=policy,
            stop_idle_only=True,
        )
        rows[label] = {"hours": r.instance_hours, "slo": r.slo_attainment}
    for row in rows.values():
        row["cost"] = row["hours"] / (rows["oracle"]["hours"] or 1e-9)
    return {"trace": name, "concurrency": concurrency, "boot_s": boot, "policies": rows}


def line(row: dict[str, Any]) -> str:
    cells = "".join(
        f"  {p['cost']:5.2f}x {p['slo']:7.2%}"
        for p in (row["policies"][k] for k in ("default", "oracle", *HOLDS))
    )
    return f"{row['trace']:<12} c={row['concurrency']:<2} boot={row['boot_s']:<5g}{cells}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs-log", type=Path, required=True, help="the NASA iPSC job log")
    parser.add_argument("--days", type=float, default=2.0, help="length of each generated shape")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="processes (2)")
    parser.add_argument("--only", action="append", help="only these traces (repeatable)")
    parser.add_argument("--json", type=Path, help="write every cell's figures here")
    args = parser.parse_args()
    grid.read_traces(args.jobs_log, (0.01, 0.1, 1.0), seed=args.seed, days=args.days)
    names = [n for n in grid._TRACES if not args.only or n in args.only]
    cells = [(n, c, b) for n in names for c in (1, 5, 25) for b in (10.0, 45.0, 120.0)]
    started = time.monotonic()
    print(f"{'':<25}" + "".join(f"  {k:>15}" for k in ("default", "oracle", *HOLDS)))
    rows: list[dict[str, Any]] = []
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for row in pool.imap(run_cell, cells):
            rows.append(row)
            print(line(row), flush=True)
    print()
    print(f"SLO minutes >= {GOAL:.0%}, cells of {len(rows)}:")
    for k in ("default", *HOLDS):
        met = sum(1 for r in rows if r["policies"][k]["slo"] >= GOAL)
        print(f"  {k:<10} {met}")
    missed = [r for r in rows if r["policies"]["default"]["slo"] < GOAL]
    for k in HOLDS:
        kept = [
            f"{r['trace']} c{r['concurrency']} b{r['boot_s']:g}"
            for r in missed
            if r["policies"][k]["slo"] >= GOAL
        ]
        print(
            f"of the {len(missed)} cells where default misses it, {k} keeps it in {len(kept)}"
            + (f" ({', '.join(kept)})" if kept else "")
        )
    print(f"\n({time.monotonic() - started:.0f} s wall)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
