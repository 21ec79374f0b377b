"""Start-up cost of the CLI and of the app-side middleware import, as a new process sees it.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15]

Runs each command ``--runs`` times as a fresh process (after two warm-up runs, so the file
cache is warm) and prints the median wall time and the spread (min..max) of:

- ``autoscaler --help`` (the console script of this environment),
- ``python -c pass`` (the interpreter alone: the floor under every figure here),
- ``python -c 'import autoscaler.web.wsgi'`` (what a web process pays for the middleware),
- ``python -c 'import autoscaler.config, autoscaler.loop'`` (what the daemon pays to start).

What it leaves out: a cold file cache (first run after boot), and the load of the other
processes on the machine, which the spread shows but does not remove. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], runs: int) -> list[float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out: list[float] = []
    for i in range(runs + 2):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd="/")
        if i >= 2:
            out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("autoscaler")
    cases = {
        "autoscaler --help": [str(script), "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "import autoscaler.web.wsgi": [sys.executable, "-c", "import autoscaler.web.wsgi"],
        "import autoscaler.config, autoscaler.loop": [
            sys.executable,
            "-c",
            "import autoscaler.config, autoscaler.loop",
        ],
    }
    print(f"{args.runs} runs each, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for name, cmd in cases.items():
        t = timed(cmd, args.runs)
        print(
            f"{name:45s} median {statistics.median(t) * 1000:6.0f} ms  "
            f"(min {min(t) * 1000:.0f}, max {max(t) * 1000:.0f})"
        )


if __name__ == "__main__":
    main()
