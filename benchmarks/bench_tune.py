"""Speed of ``autoscaler tune`` on the NASA July 1995 month (27 days at 1 s).

    .venv/bin/python benchmarks/bench_tune.py --trace PATH [--candidates 100]

Runs the whole command (``python -m autoscaler tune``) with 100 candidate settings on both
cores, with ``--peak-instances 20 --service-ms 100 --concurrency 4 --boot 45 --slo-ms 200``
and the issue's 98% target for this trace, and prints its output and the wall time (target at
most 60 s). The trace is public, not part of
the project (its source: ``tests/data/traces/README.md``); ``--trace`` gives its path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trace", type=Path, required=True, help="the NASA July 1995 month, per second (CSV)"
    )
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--target", default="0.98")
    args = parser.parse_args()
    if not args.trace.is_file():
        sys.exit(f"trace not found: {args.trace} (pass --trace PATH)")
    cmd = [sys.executable, "-m", "autoscaler", "tune", "--trace", str(args.trace)]
    cmd += ["--peak-instances", "20", "--service-ms", "100", "--concurrency", "4"]
    cmd += ["--boot", "45", "--slo-ms", "200", "--max", "40", "--jobs", "2"]
    cmd += ["--candidates", str(args.candidates), "--target", args.target]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOSCALER_")}
    started = time.perf_counter()
    cpu0 = os.times()
    done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    cpu1 = os.times()
    print(done.stdout)
    if done.returncode != 0:
        sys.exit(f"tune failed ({done.returncode}):\n{done.stderr}")
    cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    print(f"{' '.join(cmd[1:])}")
    print(f"{args.candidates} candidates: {elapsed:.1f} s wall (target <= 60 s), {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
