"""Speed and quality of ``autoscaler simulate`` on the shared real traces.

    .venv/bin/python benchmarks/bench_simulate.py [--nasa PATH] [--wc98 PATH] [--skip-quality]
        [--seeds N]

Speed: the fast model on the NASA July 1995 month (27 days at 1 s) with the default policy,
as a whole command (``python -m autoscaler simulate``, interpreter start included; target at
most 5 s) and stage by stage in-process (wall and this process's CPU time, since the machine
may be shared).

Quality: both traces scaled to ``--peak-instances 20 --service-ms 100 --concurrency 4
--boot 45 --slo-ms 200`` with every policy; prints the table per trace and the issue's bars
(default: SLO attainment >= 99.5% (World Cup) / 98.5% (NASA), instance-hours <= 1.25x the
boot-aware oracle's on both (issue 11), and neither hpa nor step better on both axes).
Figures are printed, never asserted.

The traces are not part of the project: by default they are read from ``../shared/traces``
beside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
NASA = SHARED / "nasa-1995-07-per-second.csv.gz"
WC98 = SHARED / "wc98-1998-04-30_06-09-per-minute.csv"
FLAGS = ["--peak-instances", "20", "--service-ms", "100", "--concurrency", "4", "--boot", "45"]
FLAGS += ["--slo-ms", "200"]
BARS = {"wc98": (0.995, 1.25), "nasa": (0.985, 1.25)}


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AUTOSCALER_")}


def simulate(trace: Path, *extra: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "autoscaler", "simulate", "--trace", str(trace), *extra]
    started = time.perf_counter()
    done = subprocess.run(
        cmd, check=False, cwd=ROOT, env=clean_env(), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done.stdout


def stages(trace: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from autoscaler.config import load
    from autoscaler.policy import PolicyConfig
    from autoscaler.sim.runner import PolicySpec, Setup, prepare, replay
    from autoscaler.sim.traces import read_trace

    setup = Setup(peak_instances=20, boot_s=45)
    clocks = (time.perf_counter, time.process_time)
    marks = [tuple(c() for c in clocks)]
    loaded = read_trace(trace)
    marks.append(tuple(c() for c in clocks))
    prepared = prepare(loaded, setup)
    marks.append(tuple(c() for c in clocks))
    web = PolicyConfig.from_settings(load({}).processes["web"]).replace(high=40)  # the defaults
    result = replay(prepared, setup, PolicySpec("default", 1, 40, web))
    marks.append(tuple(c() for c in clocks))
    for name, a, b in zip(("read", "prepare", "replay"), marks, marks[1:], strict=False):
        print(f"  {name:8} {b[0] - a[0]:6.2f} s wall {b[1] - a[1]:6.2f} s CPU")
    ticks = len(prepared.steps)
    replay_cpu = marks[3][1] - marks[2][1]
    print(f"  {ticks} ticks of {setup.interval_s:g} s: {ticks / replay_cpu:,.0f} ticks/s (CPU)")
    print(f"  ({result.scale_events} scalings, {result.instance_hours:.0f} instance-hours)")


def quality(name: str, trace: Path) -> None:
    _, out = simulate(trace, *FLAGS, "--policy", "all", "--json", "--max", "40")
    rows = {r["policy"]: r for r in json.loads(out)}
    _, text = simulate(trace, *FLAGS, "--policy", "all", "--max", "40")
    print(text)
    floor, ratio = BARS[name]
    d, o = rows["default"], rows["oracle"]
    cost = d["instance_hours"] / o["instance_hours"]
    print(
        f"bars for {name}: attainment {d['slo_attainment']:.2%} (>= {floor:.1%}: "
        f"{'met' if d['slo_attainment'] >= floor else 'NOT met'}), cost {cost:.2f}x the "
        "boot-aware oracle "
        f"(<= {ratio}: {'met' if cost <= ratio else 'NOT met'})"
    )
    for other in ("hpa", "step"):
        r = rows[other]
        beats = (
            r["slo_attainment"] > d["slo_attainment"] and r["instance_hours"] < d["instance_hours"]
        )
        print(f"  {other} better on both axes: {'YES' if beats else 'no'}")
    print()


def seeds(name: str, trace: Path, count: int) -> None:
    """The default policy against the oracle with the signal's noise drawn from other seeds."""
    print(f"{name}: default policy over seeds 1..{count} (SLO minutes, cost vs oracle)")
    for seed in range(1, count + 1):
        extra = ["--policy", "oracle", "--max", "40", "--json", "--seed", str(seed)]
        _, out = simulate(trace, *FLAGS, *extra)
        rows = {r["policy"]: r for r in json.loads(out)}
        d, o = rows["default"], rows["oracle"]
        cost = d["instance_hours"] / o["instance_hours"]
        print(f"  seed {seed}: {d['slo_attainment']:.2%}  {cost:.3f}x")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nasa", type=Path, default=NASA)
    parser.add_argument("--wc98", type=Path, default=WC98)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--seeds", type=int, default=0, help="also run seeds 1..N of the noise")
    args = parser.parse_args()
    for path in (args.nasa, args.wc98):
        if not path.is_file():
            sys.exit(f"trace not found: {path} (pass its path; see --help)")
    print(f"speed: NASA month, fast model, default policy ({args.nasa})")
    elapsed, _ = simulate(args.nasa, *FLAGS)
    print(f"  whole command: {elapsed:.2f} s wall (target <= 5 s)")
    stages(args.nasa)
    print()
    if not args.skip_quality:
        quality("wc98", args.wc98)
        quality("nasa", args.nasa)
    if args.seeds:
        seeds("wc98", args.wc98, args.seeds)
        seeds("nasa", args.nasa, args.seeds)


if __name__ == "__main__":
    main()
