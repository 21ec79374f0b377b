"""The fast model against the exact one on every generated traffic shape, the loop closed.

    .venv/bin/python benchmarks/bench_agreement.py [--peak 5] [--days 0.5] [--seeds 2]
        [--shapes flash10,bursty] [--jobs 2] [--service-cv 1]
    .venv/bin/python benchmarks/bench_agreement.py --signal 2 [--shapes bursty] [--seeds 1]

Each shape (``autoscaler.sim.scenarios``, seed 1) scaled to ``--peak`` instances at the
issue-7 app (boot 45 s, service 100 ms, 4 slots, SLO 200 ms), replayed by the default policy
(bounds 1..2 x peak + 2) on the fast and on the exact model, each feeding the policy its own
signal, over seeds 1..N of the noise (fast) and of the arrivals (exact); ``--service-cv`` gives
the service times another spread (a gamma coefficient of variation; 1, exponential, by
default), where the fast model's Allen-Cunneen correction is an approximation the exact model
checks. Prints, per shape, the
mean instance-hours and SLO minutes of each model, the ratio fast / exact and the difference in
points (the goal: within 10% and 1 point), and the spread over seeds. Leaves out the
baselines, other app shapes and other seeds of the shapes. The exact model is slow (about
200,000 requests a second): keep ``--peak`` and ``--days`` small.

``--signal N`` compares instead what each model feeds the policy, tick by tick, on a fixed
formation of ``N`` instances (no policy): the window's p95 queue time and its request count
(what the daemon's ``request_queue_time`` source reads). For every overload of the trace (the
steps whose rate is above the formation's capacity), it prints both models' readings at the
overload's last tick and 40 s after it, and their medians over the overloads; then, over the
ticks either model reads a queue (p95 above the SLO), the median and the quartiles of the
ratio fast / exact of the p95 and of the count. The fast model runs without its sampling noise,
the exact one on seeds 1..``--seeds``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoscaler.policy import PolicyConfig
from autoscaler.sim.commands import add_service_cv_argument
from autoscaler.sim.runner import PolicySpec, Setup, make_model, prepare, replay
from autoscaler.sim.scenarios import SCENARIOS, generate


def run(job: tuple[str, float, float, int, bool, float]) -> tuple[float, float]:
    shape, peak, days, seed, exact, cv = job
    high = int(2 * peak) + 2
    setup = Setup(peak_instances=peak, exact=exact, seed=seed, service_cv=cv)
    prepared = prepare(generate(shape, days=days, seed=1), setup)
    r = replay(prepared, setup, PolicySpec("default", 1, high, PolicyConfig(high=high)))
    return r.instance_hours, r.slo_attainment


def readings(
    shape: str, peak: float, days: float, quantity: int, *, seed: int, exact: bool
) -> tuple[list[float], list[tuple[float | None, float]]]:
    """The trace's per-step rates and what the model's window reads at each tick (p95 ms, count)
    for a fixed formation of ``quantity`` instances."""
    setup = Setup(peak_instances=peak, exact=exact, seed=seed)
    prepared = prepare(generate(shape, days=days, seed=1), setup)
    rates = prepared.steps.rates
    # the fast model without its sampling noise (the exact one's comes from its draws)
    model = make_model(
        prepared,
        setup,
        rates,
        setup.service_ms / 1000.0,
        quantity=quantity,
        boot_s=0.0,
        noise_k=0.0,
    )
    out = []
    for k in range(len(rates)):
        p95, count, _ = model.step(k, quantity)
        out.append((p95, count))
    return rates, out


def signal(args: argparse.Namespace) -> None:
    quantity = args.signal
    setup = Setup()
    capacity = quantity * setup.concurrency / (setup.service_ms / 1000.0)
    after = round(40.0 / setup.interval_s)
    for shape in args.shapes.split(","):
        rates, fast = readings(shape, args.peak, args.days, quantity, seed=1, exact=False)
        exacts = [
            readings(shape, args.peak, args.days, quantity, seed=seed, exact=True)[1]
            for seed in range(1, args.seeds + 1)
        ]
        ends = [
            k for k in range(len(rates) - 1) if rates[k] > capacity and rates[k + 1] <= capacity
        ]
        print(
            f"{shape}, peak {args.peak:g}, {args.days:g} days, {quantity} instances "
            f"({capacity:g} requests/s), exact seeds 1..{args.seeds}: {len(ends)} overloads"
        )
        print(
            f"{'tick':>6} {'at':>9} {'fast p95':>9} {'exact p95':>9} "
            f"{'fast n':>7} {'exact n':>7}  (p95 in s, n: requests in the window)"
        )
        rows: dict[str, list[tuple[float, float, float, float]]] = {"end": [], "+40 s": []}
        for end in ends:
            for label, k in (("end", end), ("+40 s", end + after)):
                if k >= len(rates):
                    continue
                fp, fn = fast[k]
                ep = statistics.mean((e[k][0] or 0.0) for e in exacts)
                en = statistics.mean(e[k][1] for e in exacts)
                rows[label].append(((fp or 0.0) / 1000, ep / 1000, fn, en))
                if len(rows["end"]) <= args.show:
                    fs, es = (fp or 0.0) / 1000, ep / 1000
                    print(f"{k:6d} {label:>9} {fs:9.2f} {es:9.2f} {fn:7.0f} {en:7.0f}")
        for label, got in rows.items():
            if got:
                med = [statistics.median(r[i] for r in got) for i in range(4)]
                p_f, p_e, n_f, n_e = med
                print(f"{'median':>6} {label:>9} {p_f:9.2f} {p_e:9.2f} {n_f:7.0f} {n_e:7.0f}")
        p_ratio, n_ratio = [], []
        for k, (fp, fn) in enumerate(fast):
            for e in exacts:
                ep, en = e[k]
                if max(fp or 0.0, ep or 0.0) > setup.slo_ms and fp and ep and en:
                    p_ratio.append(fp / ep)
                    n_ratio.append(fn / en)
        if p_ratio:
            qp = statistics.quantiles(p_ratio, n=4)
            qn = statistics.quantiles(n_ratio, n=4)
            print(
                f"ticks reading a queue: {len(p_ratio)}; fast / exact p95 median {qp[1]:.3f} "
                f"(quartiles {qp[0]:.3f} to {qp[2]:.3f}), count median {qn[1]:.3f} "
                f"({qn[0]:.3f} to {qn[2]:.3f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peak", type=float, default=5.0)
    parser.add_argument("--days", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--shapes", default=",".join(SCENARIOS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--signal", type=int, default=0, help="a fixed formation's readings")
    parser.add_argument("--show", type=int, default=5, help="overloads printed (--signal)")
    add_service_cv_argument(parser)
    args = parser.parse_args()
    if args.service_cv < 0:
        parser.error("--service-cv must be 0 or more")
    if args.signal:
        signal(args)
        return
    shapes = args.shapes.split(",")
    seeds = range(1, args.seeds + 1)
    jobs = [
        (s, args.peak, args.days, seed, exact, args.service_cv)
        for s in shapes
        for exact in (0, 1)
        for seed in seeds
    ]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        out = dict(zip(jobs, pool.map(run, jobs, chunksize=1), strict=True))
    print(
        f"peak {args.peak:g}, {args.days:g} days, seeds 1..{args.seeds}, service cv "
        f"{args.service_cv:g}: mean (spread) per model"
    )
    print(
        f"{'shape':<10} {'fast h':>8} {'exact h':>8} {'ratio':>6} "
        f"{'fast SLO':>9} {'exact SLO':>9} {'pts':>6}"
    )
    worst_cost = worst_pts = 0.0
    for s in shapes:
        f = [out[(s, args.peak, args.days, seed, 0, args.service_cv)] for seed in seeds]
        e = [out[(s, args.peak, args.days, seed, 1, args.service_cv)] for seed in seeds]
        fh, eh = statistics.mean(h for h, _ in f), statistics.mean(h for h, _ in e)
        fs, es = statistics.mean(a for _, a in f), statistics.mean(a for _, a in e)
        spread = max(a for _, a in e) - min(a for _, a in e)
        ratio, pts = fh / eh, 100 * (fs - es)
        worst_cost, worst_pts = max(worst_cost, abs(ratio - 1)), max(worst_pts, abs(pts))
        print(
            f"{s:<10} {fh:8.1f} {eh:8.1f} {ratio:6.3f} {fs:9.2%} {es:9.2%} {pts:+6.2f}"
            f"  (exact SLO spread over seeds {100 * spread:.2f} pts)"
        )
    print(f"worst: cost {100 * worst_cost:.1f}% apart, SLO minutes {worst_pts:.2f} points apart")
    print(f"({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
