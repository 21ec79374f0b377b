"""The grid: the default policy against the baselines over many traffic shapes and app shapes.

    .venv/bin/python benchmarks/bench_grid.py [--nasa PATH] [--wc98 PATH] [--days 2] [--seed 1]
        [--full] [--jobs 2] [--json FILE] [--only NAME,...] [--router-queue N] [--service-cv X]

Traffic: the two bundled trace slices (``tests/data/traces``: WC98 6 hours per minute, NASA
2 hours per second), or the whole traces when ``--wc98`` / ``--nasa`` give their paths, and
every generated shape of ``autoscaler.sim.scenarios`` over ``--days`` days (seeded by
``--seed``).

Apps: the issue-7 model (peak 20 instances, boot 45 s, service 100 ms, 4 slots) and, one
parameter at a time, ``--peak-instances`` 4/100, ``--boot`` 10/120, ``--service-ms`` 20/800 and
``--concurrency`` 1/16 (9 apps: 90 cells, about a minute on two idle CPUs, two to
four on busy ones); ``--full``
crosses all four (81 apps, 810 cells: about nine times as long, past the 15-minute budget, so
one parameter at a time is the default). The SLO is 200 ms, or
twice the service time where that is larger. The fast model, ticks every 5 s; bounds
``MIN``..max(``MAX``, twice the peak need) as ``simulate`` raises them; the configured policy's
band from the SLO unless set (``AUTOSCALER_WEB_UP_THRESHOLD``/``_DOWN_THRESHOLD``); every other
``AUTOSCALER_WEB_*`` variable in the environment applies (so a candidate policy can be judged).
``--router-queue N`` replays every cell with a router's backlog limit (``simulate``'s option:
at most N requests wait per instance, the rest refused and over the SLO); the benchmarks that
replay the grid's cells (``bench_excess``, ``bench_capacity``, ``bench_backlog``) take it too.
``--service-cv X`` gives every cell's service times that spread (``simulate``'s option: a gamma
coefficient of variation; 1, exponential, by default; 0 fixed): an app whose requests are all
alike, or one with a heavy tail of slow ones.

Per cell (trace x app) it prints each policy's cost as a multiple of the boot-aware oracle's
instance-hours and its SLO minutes, and checks the goals of issue 11 for ``default``:

- beaten on both axes by none of hpa, step, static (as many SLO minutes or more and fewer
  instance-hours, or more SLO minutes at as many instance-hours or fewer: as the worker grid
  counts it);
- SLO minutes at least the oracle's minus 1 point;
- cost at most 1.6x the oracle's;

then over the cells: the median and max cost of default, the cells that miss a goal, the
median cost at most 1.25x, and the bundled traces at the issue-7 model: WC98 at least 99.5%,
NASA at least 98.5% of minutes, each at most 1.25x. Figures are printed, never asserted. It
uses ``--jobs`` processes (default: every CPU) and leaves out the exact model, other seeds of
the noise and of the shapes (``--seed`` picks one).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoscaler.config import load  # noqa: E402
from autoscaler.policy import PolicyConfig  # noqa: E402
from autoscaler.sim.commands import (  # noqa: E402
    add_router_queue_argument,
    add_service_cv_argument,
)
from autoscaler.sim.runner import (  # noqa: E402
    PolicySpec,
    Prepared,
    Setup,
    prepare,
    replay,
    slo_band,
)
from autoscaler.sim.scenarios import SCENARIOS, generate  # noqa: E402
from autoscaler.sim.traces import Trace, read_trace  # noqa: E402

SLICES = ROOT / "tests" / "data" / "traces"
POLICIES = ("default", "hpa", "step", "static", "oracle", "bound")
RIVALS = ("hpa", "step", "static")
BASE = {"peak": 20.0, "boot": 45.0, "service": 100.0, "concurrency": 4}
VALUES: dict[str, tuple[float, ...]] = {
    "peak": (4.0, 20.0, 100.0),
    "boot": (10.0, 45.0, 120.0),
    "service": (20.0, 100.0, 800.0),
    "concurrency": (1, 4, 16),
}
GOAL_COST, GOAL_MEDIAN, GOAL_POINTS = 1.6, 1.25, 0.01
BUNDLED_GOALS = {"wc98": (0.995, 1.25), "nasa": (0.985, 1.25)}


@dataclass(frozen=True)
class App:
    peak: float
    boot: float
    service: float
    concurrency: int

    @property
    def slo_ms(self) -> float:
        return max(200.0, 2 * self.service)

    @property
    def label(self) -> str:
        return f"p{self.peak:g} b{self.boot:g} s{self.service:g} c{self.concurrency}"

    @property
    def is_base(self) -> bool:
        return (self.peak, self.boot, self.service, self.concurrency) == tuple(BASE.values())


def apps(full: bool) -> list[App]:
    if full:
        return [App(*combo) for combo in itertools.product(*VALUES.values())]  # type: ignore[arg-type]
    out = [App(**BASE)]  # type: ignore[arg-type]
    for key, values in VALUES.items():
        for value in values:
            if value != BASE[key]:
                out.append(App(**{**BASE, key: value}))  # type: ignore[arg-type]
    return out


_TRACES: dict[str, Trace] = {}  # read in the parent before forking
#: ``--router-queue``: at most this many requests wait per instance (``Setup.router_queue``;
#: set in the parent before forking)
ROUTER_QUEUE: int | None = None
#: ``--service-cv``: the spread of every cell's service times (``Setup.service_cv``; set in the
#: parent before forking)
SERVICE_CV = 1.0


def read_traces(only: set[str], *, wc98: Path, nasa: Path, days: float, seed: int) -> None:
    """Fill ``_TRACES``: the two trace slices (or whole traces) and every generated shape, or
    those in ``only`` when it names any."""
    for name, path in (("wc98", wc98), ("nasa", nasa)):
        if (not only or name in only) and path.is_file():
            _TRACES[name] = read_trace(path)
        elif not only or name in only:
            sys.exit(f"trace not found: {path}")
    for name in SCENARIOS:
        if not only or name in only:
            _TRACES[name] = generate(name, days=days, seed=seed)


def add_trace_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the grid's traces (the benchmarks that replay its cells share
    them): the two slices' paths, the generated shapes' length and seed, and ``--only``; and
    the app model's router limit, ``--router-queue``."""
    parser.add_argument("--wc98", type=Path, default=SLICES / "wc98-slice-6h.csv")
    parser.add_argument("--nasa", type=Path, default=SLICES / "nasa-slice-2h.csv.gz")
    parser.add_argument("--days", type=float, default=2.0, help="length of generated shapes")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated shapes")
    parser.add_argument("--only", default="", help="comma-separated traces/shapes to run")
    add_service_cv_argument(parser)
    add_router_queue_argument(parser)


def read_chosen_traces(args: argparse.Namespace) -> None:
    """``read_traces`` for the options of ``add_trace_options`` (and the router limit the
    cells' setup reads: set here, in the parent, before any fork)."""
    global ROUTER_QUEUE, SERVICE_CV  # noqa: PLW0603
    if args.service_cv < 0:
        sys.exit("--service-cv must be 0 or more")
    ROUTER_QUEUE = args.router_queue
    SERVICE_CV = args.service_cv
    only = {x for x in args.only.split(",") if x}
    read_traces(only, wc98=args.wc98, nasa=args.nasa, days=args.days, seed=args.seed)


class CellSetup(NamedTuple):
    setup: Setup
    prepared: Prepared
    low: int
    high: int
    engine: PolicyConfig  # the configured policy, its band from the SLO unless set
    band: str  # which band, and where it comes from


def cell_setup(trace_name: str, app: App) -> CellSetup:
    """A cell's app, its trace prepared for it, the bounds and the configured policy, with every
    ``AUTOSCALER_WEB_*`` variable in the environment applied."""
    trace = _TRACES[trace_name]
    settings = load({k: v for k, v in os.environ.items() if k.startswith("AUTOSCALER_")})
    p = settings.processes["web"]
    setup = Setup(
        service_ms=app.service,
        service_cv=SERVICE_CV,
        concurrency=app.concurrency,
        boot_s=app.boot,
        slo_ms=app.slo_ms,
        interval_s=settings.glob.interval,
        window_s=p.window,
        aggregate=p.aggregate or "p95",
        min_samples=p.min_samples,
        peak_instances=app.peak,
        router_queue=ROUTER_QUEUE,
    )
    prepared = prepare(trace, setup)
    low = p.min
    high = p.max if (p.var_prefix + "MAX") in settings.env else max(p.max, 2 * prepared.peak_need)
    engine = PolicyConfig.from_settings(p).replace(low=low, high=high)
    engine, band = slo_band(
        engine,
        setup.slo_ms,
        up_set=(p.var_prefix + "UP_THRESHOLD") in settings.env,
        down_set=(p.var_prefix + "DOWN_THRESHOLD") in settings.env,
    )
    return CellSetup(setup, prepared, low, high, engine, band)


def dominates(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether ``a`` beats ``b`` on both axes: no fewer SLO minutes and no more instance-hours,
    and better on one."""
    no_worse = a["slo"] >= b["slo"] and a["hours"] <= b["hours"]
    return no_worse and (a["slo"] > b["slo"] or a["hours"] < b["hours"])


def run_cell(trace_name: str, app: App) -> dict[str, Any]:
    setup, prepared, low, high, engine, band = cell_setup(trace_name, app)
    rows = {}
    for name in POLICIES:
        spec = PolicySpec(name, low, high, engine if name == "default" else None)
        r = replay(prepared, setup, spec, series=False)
        rows[name] = {"hours": r.instance_hours, "slo": r.slo_attainment}
    oracle = rows["oracle"]["hours"] or 1e-9
    for row in rows.values():
        row["cost"] = row["hours"] / oracle
    d = rows["default"]
    misses = []
    beaten = [n for n in RIVALS if dominates(rows[n], d)]
    if beaten:
        misses.append("beaten by " + "+".join(beaten))
    if d["slo"] < rows["oracle"]["slo"] - GOAL_POINTS:
        misses.append("SLO minutes")
    if d["cost"] > GOAL_COST:
        misses.append(f"cost>{GOAL_COST:g}")
    return {
        "trace": trace_name,
        "app": app.label,
        "base": app.is_base,
        "slo_ms": app.slo_ms,
        "band": band,
        "policies": rows,
        "misses": misses,
    }


def _cell(args: tuple[str, App]) -> dict[str, Any]:
    return run_cell(*args)


def print_rows(cells: list[dict[str, Any]]) -> None:
    head = f"{'trace':<10} {'app':<24}" + "".join(f" {n:>14}" for n in POLICIES) + "  goals"
    print(head)
    print(f"{'':<35}" + "".join(f" {'cost   SLO':>14}" for _ in POLICIES))
    for c in cells:
        parts = [f"{c['trace']:<10} {c['app']:<24}"]
        for name in POLICIES:
            r = c["policies"][name]
            parts.append(f" {r['cost']:5.2f}x {100 * r['slo']:6.2f}%")
        parts.append("  " + ("; ".join(c["misses"]) or "met"))
        print("".join(parts))


def summary(cells: list[dict[str, Any]]) -> list[str]:
    costs = [c["policies"]["default"]["cost"] for c in cells]
    median = statistics.median(costs)
    lines = [
        f"cells: {len(cells)}; default cost x oracle: median {median:.2f} "
        f"(goal <= {GOAL_MEDIAN:g}: {'met' if median <= GOAL_MEDIAN else 'NOT met'}), "
        f"max {max(costs):.2f}",
        f"default SLO minutes: min {100 * min(c['policies']['default']['slo'] for c in cells):.2f}%"
        f", oracle min {100 * min(c['policies']['oracle']['slo'] for c in cells):.2f}%",
    ]
    missed = [c for c in cells if c["misses"]]
    lines.append(f"cells where default misses a goal: {len(missed)} of {len(cells)}")
    for goal in ("beaten", "SLO minutes", "cost>"):
        n = sum(any(m.startswith(goal) for m in c["misses"]) for c in cells)
        lines.append(f"  {goal:<12} {n}")
    for c in cells:
        key = c["trace"].split("-")[0]
        if c["base"] and key in BUNDLED_GOALS:
            floor, ratio = BUNDLED_GOALS[key]
            d = c["policies"]["default"]
            ok = d["slo"] >= floor and d["cost"] <= ratio
            lines.append(
                f"{c['trace']} at the issue-7 model: {100 * d['slo']:.2f}% at {d['cost']:.2f}x "
                f"(goal >= {100 * floor:g}% at <= {ratio:g}x: {'met' if ok else 'NOT met'})"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_trace_options(parser)
    parser.add_argument("--full", action="store_true", help="full cross of the app parameters")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the cells as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    read_chosen_traces(args)
    jobs = [(t, a) for t in _TRACES for a in apps(args.full)]
    print(
        f"{len(_TRACES)} traces x {len(jobs) // max(1, len(_TRACES))} apps = {len(jobs)} cells, "
        f"{len(POLICIES)} policies each, fast model, {args.jobs} processes; "
        f"generated shapes: {args.days:g} days, seed {args.seed}; cost x boot-aware oracle"
        + ("" if ROUTER_QUEUE is None else f"; at most {ROUTER_QUEUE} waiting per instance")
        + ("" if SERVICE_CV == 1.0 else f"; service times' spread (cv) {SERVICE_CV:g}")
    )
    if args.jobs > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.jobs) as pool:
            cells = pool.map(_cell, jobs, chunksize=1)
    else:
        cells = [_cell(j) for j in jobs]
    print_rows(cells)
    print()
    print("\n".join(summary(cells)))
    print(f"\n({time.perf_counter() - started:.0f} s wall)")
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))


if __name__ == "__main__":
    main()
