"""``autoscaler tune`` on a job trace: the engine's settings searched on the worker model.

The candidates are ``autoscaler.sim.tune``'s (the configured settings first, then a seeded draw
from the same grid of thresholds, steps, sensitivity, cooldown and delay), less ``HEADROOM``,
which a job source (no arrival rate) never uses. Every candidate runs on the whole trace; the
winner is the cheapest whose share of minutes within the SLO meets the target and that loses at
most ``LOST_SHARE`` of the job-seconds to interruptions, else the one with the highest share.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

from autoscaler.sim.tune import Candidate, candidates
from autoscaler.sim.workercmd import job_context, run_specs, table
from autoscaler.sim.workersim import WorkerResult, WorkerSpec

LOST_SHARE = 0.01


def _rank(r: WorkerResult, target: float) -> tuple[bool, float]:
    meets = r.slo_attainment >= target and r.interrupted_share <= LOST_SHARE
    return (not meets, r.instance_hours if meets else -r.slo_attainment)


def tune_jobs(args: argparse.Namespace) -> int:
    ctx = job_context(args)
    base = ctx.engine
    drawn = candidates(base, ctx.setup.slo_ms, 4 * int(args.candidates), args.seed)
    cands: list[Candidate] = []
    seen: set[Candidate] = set()
    for c in drawn:
        cand = replace(c, headroom=base.headroom)
        if cand not in seen and len(cands) < int(args.candidates):
            seen.add(cand)
            cands.append(cand)
    specs = [WorkerSpec(f"c{i}", ctx.low, ctx.high, c.config(base)) for i, c in enumerate(cands)]
    workers = args.jobs or os.cpu_count() or 1
    started = time.monotonic()
    results = run_specs(ctx, specs, workers)
    elapsed = time.monotonic() - started
    best = min(range(len(cands)), key=lambda i: _rank(results[i], args.target))
    met = not _rank(results[best], args.target)[0]
    settings = {
        k: v
        for k, v in cands[best].variables(ctx.process.var_prefix).items()
        if not k.endswith("HEADROOM")
    }
    configured = replace(results[0], policy="configured")
    tuned = replace(results[best], policy="tuned")
    if args.json:
        out = {
            "target": args.target,
            "met": met,
            "evaluated": len(cands),
            "settings": {k.removeprefix(ctx.process.var_prefix): v for k, v in settings.items()},
            "tuned": tuned.figures(),
            "configured": configured.figures(),
            # the band the configured settings ran with (the candidates' are in "settings")
            "band_ms": ctx.band_ms("default"),
            "band_from": ctx.band_from(),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(ctx.describe())
    print()
    print(
        f"cheapest settings with at least {args.target:.2%} of minutes within the SLO and at "
        f"most {LOST_SHARE:.0%} of job-seconds lost to interruptions:"
        if met
        else f"no candidate reached {args.target:.2%} (with at most {LOST_SHARE:.0%} of "
        "job-seconds lost); the closest:"
    )
    for name, value in settings.items():
        print(f"  {name}={value}")
    print()
    print(table([configured, tuned]))
    print(f"\n({len(cands)} candidates in {elapsed:.1f} s on {workers} processes)")
    return 0
