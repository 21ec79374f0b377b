"""``autoscaler simulate`` on a job trace: the worker model, its policies and figures.

``autoscaler.sim.commands`` hands a trace whose columns are a job trace's (``duration_s`` or
``jobs``) to ``simulate_jobs``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from autoscaler.config import ProcessSettings, Settings, load
from autoscaler.model import Metric
from autoscaler.policy import PolicyConfig
from autoscaler.ports import ConfigError
from autoscaler.sim.jobs import JobTrace, prepare_jobs, read_job_trace
from autoscaler.sim.output import JOB_COLUMNS, UsageError, policy_names, render
from autoscaler.sim.parallel import fork_pool
from autoscaler.sim.runner import slo_band
from autoscaler.sim.workersim import (
    WORKER_POLICIES,
    WorkerResult,
    WorkerSetup,
    WorkerSpec,
    oracle_plan,
    replay_jobs,
    ticks_for,
)

DEFAULT_SLO_MS = 60_000.0
COLUMNS = JOB_COLUMNS  # in sim/output, which the job report reads too (no import cycle)


#: a worker process's settings when none is configured: its defaults, read as ``load`` reads
#: them (the source and its URL only make it a job-latency process)
_WORKER_ENV = {
    "AUTOSCALER_PROCESSES": "worker",
    "AUTOSCALER_WORKER_SOURCE": "rq",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


#: the job sources that tell the jobs ended between two polls (``Reading.finished``); a replay
#: with another source's settings feeds ``finished`` as unknown, as that source would
TELLS_FINISHED = frozenset({"rq"})


#: the band a job trace's default policy and ``step`` run with where ``UP_THRESHOLD`` /
#: ``DOWN_THRESHOLD`` are not set: up at half the SLO, down at a fifth of up (the shape of a
#: worker's defaults, 10 s / 2 s). The signal is the oldest due job's age, and a minute misses
#: the SLO as soon as that job is older than it: the age goes on growing about one second per
#: second while an instance added at the up threshold boots, so half the SLO is left for that
#: boot (the boot is learned by the daemon, not known when it is configured)
UP_SHARE = 0.5
DOWN_SHARE = 1.0 / 5.0


def job_band(
    cfg: PolicyConfig,
    slo_ms: float,
    *,
    up_set: bool,
    down_set: bool,
    up_share: float = UP_SHARE,
) -> tuple[PolicyConfig, str]:
    """The engine's settings with its band derived from the SLO where it was not set: the up
    threshold at ``up_share`` of the SLO, the down threshold at ``DOWN_SHARE`` of the up one.
    Returns the settings and a line saying which band is used and where it comes from."""
    return slo_band(
        cfg,
        slo_ms,
        up_set=up_set,
        down_set=down_set,
        up_share=up_share,
        down_share=DOWN_SHARE,
        unit="s",
    )


def worker_defaults() -> ProcessSettings:
    """The settings of a worker process with nothing set but its job source."""
    return load(_WORKER_ENV).processes["worker"]


def job_process(settings: Settings, name: str | None) -> ProcessSettings:
    """The process whose settings a job trace runs with: ``--process``, else the first one
    configured that scales on job latency, else the defaults of a worker process."""
    if name is not None:
        if name not in settings.processes:
            known = ", ".join(settings.processes)
            raise UsageError(f"--process: {name!r} is not configured (have {known})")
        p = settings.processes[name]
        if p.metric is not Metric.JOB_LATENCY:
            raise UsageError(
                f"--process: {name!r} scales on request queue time; a job trace needs a process "
                "that scales on job latency"
            )
        return p
    for p in settings.processes.values():
        if p.metric is Metric.JOB_LATENCY:
            return p
    return worker_defaults()


@dataclass
class JobContext:
    trace: JobTrace
    raw_jobs: int
    setup: WorkerSetup
    process: ProcessSettings
    engine: PolicyConfig
    low: int
    high: int
    factor: float
    plan: list[int]
    notes: list[str]
    duration_scale: float
    band: str  # which band the default policy and ``step`` run with, and where it comes from

    def spec(self, name: str) -> WorkerSpec:
        if name == "default":
            return WorkerSpec(name, self.low, self.high, self.engine)
        if name == "step":
            return WorkerSpec(
                name, self.low, self.high, up_ms=self.engine.up_ms, down_ms=self.engine.down_ms
            )
        return WorkerSpec(name, self.low, self.high)

    def band_ms(self, policy: str) -> list[float] | None:
        """The band ``policy`` ran with (up, down, in ms), or ``None`` if it has none."""
        if policy in ("default", "step"):
            return [self.engine.up_ms, self.engine.down_ms]
        return None

    def band_from(self) -> str:
        """Where the band comes from: the SLO, the settings, or both (``job_band``'s words)."""
        return self.band[self.band.index("(") + 1 : -1]

    def describe(self) -> str:
        t, s = self.trace, self.setup
        start = datetime.fromtimestamp(t.start, UTC).strftime("%Y-%m-%d %H:%M")
        kind = "binned counts, durations drawn" if t.binned else "one row per job"
        lines = [
            f"job trace {t.path} ({kind}): {self.raw_jobs} jobs from {start} UTC "
            f"({t.span_s / 86400:.1f} days), queues {', '.join(t.queues)}",
            f"durations x{self.duration_scale:g} (median {t.median_duration():.3g} s); "
            f"arrivals scaled x{self.factor:.4g}: {len(t)} jobs; the oracle's peak is "
            f"{max(self.plan, default=0)} instances",
            f"workers: {s.concurrency} slots per instance, boot {s.boot_s:g} s, stop grace "
            f"{s.grace_s:g} s; SLO: oldest due job <= {s.slo_ms / 1000:g} s; ticks every "
            f"{s.interval_s:g} s; settings of process {self.process.name!r}; bounds "
            f"{self.low}..{self.high}",
            f"{self.band} for default and step",
        ]
        return "\n".join(lines + self.notes)


def job_context(args: argparse.Namespace) -> JobContext:
    if getattr(args, "router_queue", None) is not None:
        raise UsageError("--router-queue: a router queues web requests, not jobs")
    try:
        settings = load()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    p = job_process(settings, args.process)
    raw = read_job_trace(
        args.trace,
        duration_s=args.job_duration,
        duration_cv=args.job_duration_cv,
        seed=args.seed,
    )
    slo_ms = DEFAULT_SLO_MS if args.slo_ms is None else args.slo_ms
    setup = WorkerSetup(
        concurrency=int(args.concurrency),
        boot_s=args.boot,
        slo_ms=slo_ms,
        interval_s=settings.glob.interval,
        grace_s=args.grace,
        jobs_per_instance=args.jobs_per_instance,
        finished=p.source in TELLS_FINISHED,
    )
    try:
        trace, factor = prepare_jobs(
            raw,
            duration_scale=args.duration_scale,
            concurrency=setup.concurrency,
            peak_instances=args.peak_instances,
            seed=args.seed,
        )
    except ValueError as exc:
        raise UsageError(f"--peak-instances: {exc}") from None
    plan = oracle_plan(trace, setup, ticks_for(trace, setup))
    peak = max(plan, default=1)
    low = p.min if args.min is None else args.min
    notes: list[str] = []
    if args.max is not None:
        high = args.max
    elif (p.var_prefix + "MAX") in settings.env:
        high = p.max
    else:
        high = max(p.max, 2 * peak)
        if high != p.max:
            notes.append(
                f"{p.var_prefix}MAX is not set: bounds raised to {low}..{high} for this trace "
                "(set it, or pass --max)"
            )
    if not 0 <= low <= high or high < 1:
        raise UsageError(f"--min/--max: bounds {low}..{high} are not valid")
    engine, band = job_band(
        PolicyConfig.from_settings(p).replace(low=low, high=high),
        slo_ms,
        up_set=(p.var_prefix + "UP_THRESHOLD") in settings.env,
        down_set=(p.var_prefix + "DOWN_THRESHOLD") in settings.env,
    )
    return JobContext(
        trace,
        len(raw),
        setup,
        p,
        engine,
        low,
        high,
        factor,
        plan,
        notes,
        args.duration_scale,
        band,
    )


_JOB: JobContext | None = None  # set before forking workers


def _run_one(spec: WorkerSpec) -> WorkerResult:
    assert _JOB is not None
    ctx = _JOB
    return replay_jobs(ctx.trace, ctx.setup, spec, ctx.plan, scale=ctx.factor)


def run_specs(
    ctx: JobContext,
    specs: Sequence[WorkerSpec],
    workers: int,
) -> list[WorkerResult]:
    """Every policy given, in ``workers`` forked processes when more than one (``fork_pool``:
    their SIGTERM the default, whatever this process's handler)."""
    global _JOB  # noqa: PLW0603 (read by forked workers without pickling the trace)
    _JOB = ctx
    try:
        if workers <= 1 or len(specs) == 1:
            return [_run_one(spec) for spec in specs]
        with fork_pool(min(workers, len(specs))) as pool:
            return pool.map(_run_one, specs)
    finally:
        _JOB = None


def table(results: Sequence[WorkerResult]) -> str:
    return render(COLUMNS, [{key: getattr(r, key) for key, _, _ in COLUMNS} for r in results])


def simulate_jobs(args: argparse.Namespace) -> int:
    names = policy_names(args.policy, WORKER_POLICIES, " for a job trace")
    ctx = job_context(args)
    workers = args.jobs or os.cpu_count() or 1
    started = time.monotonic()
    results = run_specs(ctx, [ctx.spec(name) for name in names], workers)
    elapsed = time.monotonic() - started
    if args.report:
        from autoscaler.sim.jobreport import write_job_report

        write_job_report(Path(args.report), ctx.describe(), ctx.setup, results, ctx.trace.start)
    if args.json:
        rows = [
            {**r.figures(), "band_ms": ctx.band_ms(r.policy), "band_from": ctx.band_from()}
            for r in results
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(ctx.describe())
    print()
    print(table(results))
    lines = [
        f"{r.policy}: {r.interrupted_share:.2%} of job-seconds lost to interruptions"
        for r in results
        if r.interrupted_jobs
    ]
    if lines:
        print("\n" + "\n".join(lines))
    print(f"\n({len(results)} policies in {elapsed:.1f} s)")
    if args.report:
        print(f"report: {args.report}")
    return 0
