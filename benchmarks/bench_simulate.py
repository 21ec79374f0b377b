"""Speed and quality of ``autoscaler simulate`` on two public real traces.

    .venv/bin/python benchmarks/bench_simulate.py --nasa PATH --wc98 PATH [--skip-quality]
        [--seeds N] [--runs 5]

Speed: the fast model on the NASA July 1995 month (27 days at 1 s) with the default policy,
as a whole command (``python -m autoscaler simulate``, interpreter start included, bytecode
cached after one untimed run; target at most 5 s; the median and the range of ``--runs`` runs,
wall and CPU of the command and its children) and stage by stage in-process (wall and this
process's CPU time, since the machine may be shared).

Quality: both traces scaled to ``--peak-instances 20 --service-ms 100 --concurrency 4
--boot 45 --slo-ms 200`` with every policy; prints the table per trace and the issue's bars
(default: SLO attainment >= 99.5% (World Cup) / 98.5% (NASA), instance-hours <= 1.25x the
boot-aware oracle's on both (issue 11), and neither hpa nor step better on both axes).
Figures are printed, never asserted.

The traces are not part of the project (they are public: the sources are in
``tests/data/traces/README.md``): ``--nasa`` and ``--wc98`` give their paths.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--peak-instances", "20", "--service-ms", "100", "--concurrency", "4", "--boot", "45"]
FLAGS += ["--slo-ms", "200"]
BARS = {"wc98": (0.995, 1.25), "nasa": (0.985, 1.25)}


def clean_env() -> dict[str, str]:
    """The environment without the daemon's variables, and with bytecode cached as a user's
    installed copy runs (pip compiles it on install; a checkout writes ``__pycache__`` on the
    first run): a host setting ``PYTHONDONTWRITEBYTECODE`` would have every run recompile the
    project's source (0.03 to 0.06 s here)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUTOSCALER_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def simulate(trace: Path, *extra: str) -> tuple[float, str]:
    elapsed, _, out = simulate_timed(trace, *extra)
    return elapsed, out


def simulate_timed(trace: Path, *extra: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the command and its children) and the output."""
    cmd = [sys.executable, "-m", "autoscaler", "simulate", "--trace", str(trace), *extra]
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(
        cmd, check=False, cwd=ROOT, env=clean_env(), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, cpu, done.stdout


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
    rest = without_decide(prepared, setup, PolicySpec("default", 1, 40, web))
    print(
        f"  the replay without decide (its answers replayed): {rest:.2f} s CPU, so decide is "
        f"about {replay_cpu - rest:.2f} s ({(replay_cpu - rest) / replay_cpu:.0%}) of the "
        "replay's CPU; the rest is the model, the loop and the engine's wrapper"
    )


def without_decide(prepared: Any, setup: Any, spec: Any) -> float:
    """CPU seconds of the replay with the policy engine's ``decide`` replaced by the answers it
    gave on a first replay (everything else runs as in the command)."""
    from autoscaler.sim import baselines
    from autoscaler.sim.runner import replay

    with baselines.recording_decisions() as answers:
        replay(prepared, setup, spec)
    real = baselines.decide
    try:
        replies = iter(answers)
        baselines.decide = lambda cfg, state, obs, now: next(replies)
        started = time.process_time()
        replay(prepared, setup, spec)
        return time.process_time() - started
    finally:
        baselines.decide = real


def reading(trace: Path, runs: int) -> None:
    """The trace read by the columnar reader (pyarrow, when installed) and by the pure-Python
    one, ``runs`` times each, alternating; CPU is this process's (the pure reader's forked time
    check is left out of it)."""
    sys.path.insert(0, str(ROOT))
    from autoscaler.sim.traces import read_trace

    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(runs):
        for columnar in (True, False):
            wall, cpu = time.perf_counter(), time.process_time()
            read_trace(trace, columnar=columnar)
            times[columnar].append((time.perf_counter() - wall, time.process_time() - cpu))
    for columnar, label in ((True, "columnar"), (False, "pure Python")):
        walls = [w for w, _ in times[columnar]]
        cpus = [c for _, c in times[columnar]]
        print(
            f"  read, {label:11} {runs} runs: median {statistics.median(walls):.2f} s wall "
            f"({min(walls):.2f}-{max(walls):.2f}), {statistics.median(cpus):.2f} s CPU "
            f"({min(cpus):.2f}-{max(cpus):.2f})"
        )


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
    parser.add_argument(
        "--nasa", type=Path, required=True, help="the NASA July 1995 month, per second (CSV)"
    )
    parser.add_argument(
        "--wc98", type=Path, required=True, help="the World Cup 1998 trace, per minute (CSV)"
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--seeds", type=int, default=0, help="also run seeds 1..N of the noise")
    parser.add_argument("--runs", type=int, default=5, help="runs of the timed command (5)")
    args = parser.parse_args()
    for path in (args.nasa, args.wc98):
        if not path.is_file():
            sys.exit(f"trace not found: {path} (pass its path; see --help)")
    print(f"speed: NASA month, fast model, default policy ({args.nasa})")
    simulate_timed(args.nasa, *FLAGS)  # untimed: writes the bytecode, warms the file cache
    walls, cpus = [], []
    for _ in range(args.runs):
        wall, cpu, _ = simulate_timed(args.nasa, *FLAGS)
        walls.append(wall)
        cpus.append(cpu)
    print(
        f"  whole command, {args.runs} runs: median {statistics.median(walls):.2f} s wall "
        f"({min(walls):.2f}-{max(walls):.2f}), median {statistics.median(cpus):.2f} s CPU "
        f"({min(cpus):.2f}-{max(cpus):.2f}) (target <= 5 s; os.getloadavg() "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    stages(args.nasa)
    reading(args.nasa, args.runs)
    print(f"  (os.getloadavg() {os.getloadavg()[0]:.1f} after the runs)")
    print()
    if not args.skip_quality:
        quality("wc98", args.wc98)
        quality("nasa", args.nasa)
    if args.seeds:
        seeds("wc98", args.wc98, args.seeds)
        seeds("nasa", args.nasa, args.seeds)


if __name__ == "__main__":
    main()
