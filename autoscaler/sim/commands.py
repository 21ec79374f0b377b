"""``autoscaler simulate`` and ``autoscaler tune``: argument parsing, running, printing.

``autoscaler.cli`` registers the two subcommands with ``add_simulate_arguments`` /
``add_tune_arguments`` and runs them with ``run_simulate`` / ``run_tune``, which return the
exit status: 0 success, 2 invalid usage, configuration or trace (the message says which line
and why), 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from autoscaler.config import ProcessSettings, load
from autoscaler.durations import parse_duration
from autoscaler.model import Metric
from autoscaler.policy import PolicyConfig
from autoscaler.ports import ConfigError
from autoscaler.sim.baselines import POLICIES
from autoscaler.sim.output import UsageError, policy_names, table
from autoscaler.sim.parallel import run_many
from autoscaler.sim.runner import (
    PolicySpec,
    Prepared,
    Setup,
    prepare,
    slo_band,
)
from autoscaler.sim.scenarios import SCENARIOS, generate
from autoscaler.sim.traces import Trace, TraceError, read_trace

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2


def _seconds(text: str) -> float:
    try:
        return parse_duration(text, "s")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    return parse


def _add_model_arguments(parser: argparse.ArgumentParser, own_traffic: bool = False) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    if own_traffic:
        source.add_argument(
            "--from-history",
            metavar="PROCESS",
            help="tune on this process's own recorded traffic, with the app model fitted from "
            "the history (the model flags are then ignored; docs/dashboard.md)",
        )
    source.add_argument("--trace", metavar="FILE", help="CSV or CSV.gz trace")
    source.add_argument(
        "--scenario",
        choices=list(SCENARIOS),
        help="a generated trace instead (seeded by --seed; docs/simulator.md)",
    )
    parser.add_argument(
        "--days", type=_positive(float), default=2.0, help="length of --scenario (2)"
    )
    parser.add_argument(
        "--process",
        default=None,
        help="whose configured settings to use (default: web; for a job trace, the first "
        "process that scales on job latency)",
    )
    m = parser.add_argument_group("the simulated app")
    m.add_argument("--service-ms", type=_positive(float), default=100.0, help="mean (100)")
    add_service_cv_argument(m)
    m.add_argument("--concurrency", type=_positive(int), default=4, help="slots per instance (4)")
    m.add_argument("--boot", type=_seconds, default=45.0, help="seconds before a new one serves")
    m.add_argument(
        "--peak-instances",
        type=_positive(float),
        default=None,
        help="scale the trace so its peak needs about this many instances",
    )
    m.add_argument(
        "--slo-ms",
        type=_positive(float),
        default=None,
        help="p95 queue time SLO (200); for a job trace, the oldest due job's age (60000)",
    )
    m.add_argument(
        "--seed", type=int, default=1, help="seed of the arrivals (exact) or signal noise (fast)"
    )
    m.add_argument("--smooth", type=_seconds, default=60.0, help="smooth counts over (60s)")
    m.add_argument("--exact", action="store_true", help="request-level model (slow)")
    add_router_queue_argument(m)
    m.add_argument("--min", type=int, default=None, help="bounds for every policy (default: MIN)")
    m.add_argument(
        "--max", type=int, default=None, help="(default: MAX, raised to fit the trace if unset)"
    )
    j = parser.add_argument_group("the simulated workers (job traces)")
    j.add_argument(
        "--duration-scale", type=_positive(float), default=1.0, help="multiply job durations"
    )
    j.add_argument(
        "--job-duration",
        type=_positive(float),
        default=10.0,
        help="mean job duration in s for a binned (time,jobs) trace (10)",
    )
    _add_spread(j, "--job-duration-cv", "drawn job durations")
    j.add_argument(
        "--jobs-per-instance",
        type=_positive(float),
        default=None,
        help="the hirefire baseline's ratio (default: --concurrency)",
    )
    j.add_argument(
        "--grace",
        type=_seconds,
        default=30.0,
        help="a stopped worker's grace before its jobs are interrupted (30s, Heroku's)",
    )


def add_router_queue_argument(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--router-queue N`` (``Setup.router_queue``): for ``simulate``, ``tune`` and the
    benchmarks that replay the web grid."""
    group.add_argument(
        "--router-queue",
        type=int,
        default=None,
        metavar="N",
        help="at most N requests wait per instance, the rest refused at once and over the SLO "
        "(a router's backlog limit; about 100 less the slots on Heroku; default: no limit)",
    )


def add_service_cv_argument(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--service-cv X`` (``Setup.service_cv``): for ``simulate``, ``tune`` and the benchmarks
    that replay the web grid or compare the two models."""
    _add_spread(group, "--service-cv", "service times")


def _add_spread(
    group: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, what: str
) -> None:
    group.add_argument(
        flag,
        type=float,
        default=1.0,
        help=f"spread of {what}: gamma coefficient of variation (1 exponential, 0 fixed)",
    )


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replay a traffic trace through a model of the app with the configured policy and any "
        "baselines named; print cost and queue-time figures per policy."
    )
    _add_model_arguments(parser)
    parser.add_argument(
        "--policy",
        action="append",
        default=None,
        metavar="NAME",
        help=f"also run this policy ({', '.join(POLICIES)}, or all); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--report", metavar="FILE.html", help="write a self-contained report")
    parser.add_argument(
        "--jobs", type=_positive(int), default=None, help="processes (default: CPUs)"
    )


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Search thresholds, steps, cooldowns and delays for the cheapest settings that keep "
        "SLO attainment at or above the target on a trace; print them as config vars."
    )
    _add_model_arguments(parser, own_traffic=True)
    parser.add_argument("--since", default="7d", help="with --from-history: how far back (7d)")
    parser.add_argument(
        "--target", type=float, default=0.995, help="share of minutes within the SLO (0.995)"
    )
    parser.add_argument(
        "--candidates", type=_positive(int), default=120, help="settings to try (120)"
    )
    parser.add_argument(
        "--jobs", type=_positive(int), default=None, help="processes (default: CPUs)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


# --- shared -----------------------------------------------------------------------------------


class Context:
    """What both commands compute before running policies."""

    def __init__(self, args: argparse.Namespace) -> None:
        try:
            settings = load()
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        process = args.process or "web"
        if process not in settings.processes:
            known = ", ".join(settings.processes)
            raise UsageError(f"--process: {process!r} is not configured (have {known})")
        self.settings = settings
        p = settings.processes[process]
        if p.metric is not Metric.REQUEST_QUEUE_TIME:
            raise UsageError(
                f"--process: {process!r} scales on job latency; give it a job trace "
                "(time,duration_s or time,jobs) to replay"
            )
        self.process: ProcessSettings = p
        if args.concurrency < 1 or args.service_cv < 0:
            raise UsageError("--concurrency must be 1 or more and --service-cv 0 or more")
        router_queue = getattr(args, "router_queue", None)
        if router_queue is not None and router_queue < 0:
            raise UsageError("--router-queue must be 0 or more")
        assert p.aggregate is not None
        self.setup = Setup(
            service_ms=args.service_ms,
            service_cv=args.service_cv,
            concurrency=int(args.concurrency),
            boot_s=args.boot,
            slo_ms=200.0 if args.slo_ms is None else args.slo_ms,
            interval_s=settings.glob.interval,
            window_s=p.window,
            aggregate=p.aggregate,
            min_samples=p.min_samples,
            smooth_s=args.smooth,
            peak_instances=args.peak_instances,
            seed=args.seed,
            exact=args.exact,
            router_queue=router_queue,
        )
        self.trace: Trace = (
            generate(args.scenario, days=args.days, seed=args.seed)
            if args.scenario
            else read_trace(args.trace)
        )
        try:
            self.prepared: Prepared = prepare(self.trace, self.setup)
        except ValueError as exc:
            raise UsageError(f"--peak-instances: {exc}") from None
        self.low = p.min if args.min is None else args.min
        self.notes: list[str] = []
        if args.max is not None:
            self.high = args.max
        elif (p.var_prefix + "MAX") in settings.env:
            self.high = p.max
        else:
            self.high = max(p.max, 2 * self.prepared.peak_need)
            if self.high != p.max:
                self.notes.append(
                    f"{p.var_prefix}MAX is not set: bounds raised to {self.low}..{self.high} "
                    "for this trace (set it, or pass --max)"
                )
        if not 0 <= self.low <= self.high or self.high < 1:
            raise UsageError(f"--min/--max: bounds {self.low}..{self.high} are not valid")
        engine = PolicyConfig.from_settings(p)
        engine.low, engine.high = self.low, self.high
        self.engine, self.band = slo_band(
            engine,
            self.setup.slo_ms,
            up_set=(p.var_prefix + "UP_THRESHOLD") in settings.env,
            down_set=(p.var_prefix + "DOWN_THRESHOLD") in settings.env,
        )

    def spec(self, name: str, cfg: PolicyConfig | None = None) -> PolicySpec:
        if name == "default" and cfg is None:
            cfg = self.engine
        return PolicySpec(name, self.low, self.high, cfg)

    def describe(self) -> str:
        t, s, pr = self.trace, self.setup, self.prepared
        start = datetime.fromtimestamp(t.start, UTC).strftime("%Y-%m-%d %H:%M")
        model = (
            f"exact (requests as a seeded Poisson process, seed {s.seed})"
            if s.exact
            else "fast (arrivals as a rate; Poisson randomness through queueing formulas)"
        )
        lines = [
            f"trace {t.path}: {len(t.counts)} bins of {t.width:g} s from {start} UTC "
            f"({t.span_s / 86400:.1f} days, {t.total:.0f} requests)",
            f"scaled x{pr.scale:.4g} (smoothed over {s.smooth_s:g} s): the peak needs "
            f"{pr.peak_need} instances for p95 queue time <= {s.slo_ms:g} ms",
            f"app: {s.concurrency} slots per instance, service {s.service_ms:g} ms mean "
            f"(cv {s.service_cv:g}), boot {s.boot_s:g} s; ticks every {s.interval_s:g} s; "
            f"bounds {self.low}..{self.high}; model {model}",
        ]
        lines.append(f"{self.band} for default; step: up {s.slo_ms:g} ms, down {s.slo_ms / 4:g} ms")
        if s.router_queue is not None:
            lines.append(
                f"router: at most {s.router_queue} requests wait per instance; the rest are "
                "refused at once and count as over the SLO"
            )
        return "\n".join(lines + self.notes)

    def band_ms(self, policy: str) -> list[float] | None:
        """The queue-time band ``policy`` ran with (up, down), or ``None`` if it has none."""
        if policy == "step":
            return [self.setup.slo_ms, self.setup.slo_ms / 4]
        if policy == "default":
            return [self.engine.up_ms, self.engine.down_ms]
        return None


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.on = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.on:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.monotonic() - self.started
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{100 * done / max(total, 1):3.0f}% {elapsed:.0f}s"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _guard(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return run(args)
    except (UsageError, TraceError) as exc:
        print(f"autoscaler: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        return EXIT_UNEXPECTED


# --- simulate ---------------------------------------------------------------------------------


def run_simulate(args: argparse.Namespace) -> int:
    return _guard(_simulate, args)


def _simulate(args: argparse.Namespace) -> int:
    if args.report and not str(args.report).lower().endswith((".html", ".htm")):
        raise UsageError("--report: give a file name ending in .html")
    from autoscaler.sim.jobs import is_job_header

    if args.trace and is_job_header(args.trace):  # workers: autoscaler.sim.workercmd
        from autoscaler.sim.workercmd import simulate_jobs

        return simulate_jobs(args)
    names = policy_names(args.policy, POLICIES)
    ctx = Context(args)
    workers = args.jobs or os.cpu_count() or 1
    jobs = [(ctx.spec(name), 0, None) for name in names]
    started = time.monotonic()
    results = run_many(ctx.prepared, ctx.setup, jobs, workers, Progress("simulating"))
    elapsed = time.monotonic() - started
    if args.report:
        from autoscaler.sim.report import write_report

        write_report(Path(args.report), ctx.describe(), ctx.setup, results, ctx.trace.start)
    if args.json:
        rows = [{**r.figures(), "band_ms": ctx.band_ms(r.policy)} for r in results]
        print(json.dumps(rows, indent=2))
    else:
        print(ctx.describe())
        print()
        print(table(results))
        print(f"\n({len(results)} policies in {elapsed:.1f} s)")
        if args.report:
            print(f"report: {args.report}")
    return EXIT_OK


# --- tune -------------------------------------------------------------------------------------


def run_tune(args: argparse.Namespace) -> int:
    return _guard(_tune, args)


def _tune(args: argparse.Namespace) -> int:

    if not 0 < args.target <= 1:
        raise UsageError("--target: a share of minutes, above 0 and at most 1 (0.995)")
    if args.from_history:
        with tempfile.TemporaryDirectory() as tmp:
            return _tune_own_traffic(args, tmp)
    from autoscaler.sim.jobs import is_job_header

    if args.trace and is_job_header(args.trace):  # workers: autoscaler.sim.workertune
        from autoscaler.sim.workertune import tune_jobs

        return tune_jobs(args)
    return _tune_with(args)


def _tune_own_traffic(args: argparse.Namespace, tmp: str) -> int:
    """``tune --from-history``: export the process's history, fit the app, then tune on it."""
    from autoscaler.config import read_env
    from autoscaler.durations import parse_duration
    from autoscaler.sim.owntraffic import export_from_env

    env = {**read_env(), **os.environ}
    try:
        text, fit, _ = export_from_env(env, args.from_history, parse_duration(args.since, "s"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path = os.path.join(tmp, f"{args.from_history}.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(fit.describe((args.service_ms, int(args.concurrency), args.boot)), file=sys.stderr)
    args.trace, args.process = path, args.from_history
    args.service_ms = fit.service_ms or args.service_ms
    args.concurrency = fit.concurrency or args.concurrency
    args.boot = fit.boot_s if fit.boot_s is not None else args.boot
    return _tune_with(args)


def _tune_with(args: argparse.Namespace) -> int:
    from autoscaler.sim.tune import tune

    ctx = Context(args)
    workers = args.jobs or os.cpu_count() or 1
    started = time.monotonic()
    outcome = tune(
        ctx.prepared,
        ctx.setup,
        ctx.engine,
        (ctx.low, ctx.high),
        n=int(args.candidates),
        target=args.target,
        workers=workers,
        progress=Progress("tuning"),
    )
    elapsed = time.monotonic() - started
    if args.json:
        # the band the configured settings ran with (the candidates' are in "settings")
        print(json.dumps({**outcome.as_json(), "band_ms": ctx.band_ms("default")}, indent=2))
        return EXIT_OK
    print(ctx.describe())
    print()
    print(outcome.text(ctx.process.var_prefix))
    print(f"\n({outcome.evaluated} candidates in {elapsed:.1f} s on {workers} processes)")
    return EXIT_OK
