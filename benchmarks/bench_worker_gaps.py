"""What keeping an idle worker warm costs on a job log, and the cold starts it saves.

    .venv/bin/python benchmarks/bench_worker_gaps.py --jobs-log PATH [--scales 0.01,0.1]

For each ``--duration-scale``: the gaps in which no job is due or running (jobs run as soon as
they are due, as with enough instances), and, for an idle time T before a worker goes to 0,
the cold starts left (gaps longer than T) and the idle instance-hours spent (each gap up to
T). With a boot longer than the SLO every cold start misses at least one minute, so this
bounds what a reactive policy can reach on a sparse log (``docs/simulator.md``). A count, not
a timing: one run says it all. Left out: waits (a job that queues behind another shortens the
gaps), more than one instance kept warm.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoscaler.sim.jobs import prepare_jobs, read_job_trace  # noqa: E402

IDLE_S = (120, 600, 1800, 3600, 4 * 3600, 12 * 3600)


def gaps(arrivals: list[float], durations: list[float]) -> list[float]:
    """The gaps (s) with no job due or running, each job running from when it is due."""
    out: list[float] = []
    busy_until: float | None = None
    for a, d in sorted(zip(arrivals, durations, strict=True)):
        if busy_until is not None and a > busy_until:
            out.append(a - busy_until)
        busy_until = a + d if busy_until is None else max(busy_until, a + d)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs-log", type=Path, required=True, help="the job log (time,duration_s per job)"
    )
    parser.add_argument("--scales", default="0.01,0.1", help="duration scales (0.01,0.1)")
    args = parser.parse_args()
    log = read_job_trace(args.jobs_log)
    for scale in (float(s) for s in args.scales.split(",") if s):
        trace = prepare_jobs(log, duration_scale=scale)[0]
        found = gaps(list(trace.arrivals), list(trace.durations))
        minutes = trace.span_s / 60.0
        print(f"x{scale:g}: {len(trace)} jobs, {minutes:.0f} minutes, {len(found)} idle gaps")
        for idle in IDLE_S:
            cold = sum(1 for g in found if g > idle)
            warm_h = sum(min(g, idle) for g in found) / 3600.0
            print(
                f"  idle {idle / 60:5.0f} min: {cold:5d} cold starts "
                f"({100.0 * cold / minutes:.2f}% of minutes), {warm_h:7.1f} idle instance-hours"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
