"""Replaying a job trace through the worker model with one policy, and the figures it yields.

The policies a job trace is replayed with (``simulate --policy``):

- ``default``: ``autoscaler.policy.decide`` itself, fed what the daemon's job sources report (the
  age of the oldest due job as the signal, the depth and the busy jobs, the jobs that ended since
  the last tick unless ``WorkerSetup.finished`` is off; no arrival rate).
- ``static``: a fixed formation, the most instances the ``oracle`` ever runs.
- ``step``: the hosted job-latency rule (Judoscale's documented behaviour): checked every 10 s on
  the same signal and band as ``default``, +1 at most once every 3 minutes (the first upscale
  at once), -1 after 10 minutes below the band and 10 minutes after any change, 0 -> 1 as soon as
  a job waits.
- ``hirefire``: HireFire's job-queue rule: every 60 s (its default checkup), instances =
  ceil(jobs in the queue, waiting or running / ``jobs_per_instance``), up at once; with its
  default ``decrementable`` off, down only once the queue is empty, then to the minimum.
- ``oracle``: knows every arrival and duration. It plans, step by step, the fewest instances that
  start every job within the SLO (a job starts early only on a slot already paid for), asks for
  them ``boot`` seconds ahead (and pays for the boot), and stops only idle instances.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import ne
from typing import Protocol

from autoscaler.model import Instant, Observation, Status
from autoscaler.policy import PolicyConfig, PolicyState, decide
from autoscaler.policy.jobs import recurring
from autoscaler.sim.jobmodel import Job, WorkerModel
from autoscaler.sim.jobs import JobTrace
from autoscaler.sim.stepband import Every, StepRule, step_band

WORKER_BASELINES = ("static", "step", "hirefire", "oracle")
WORKER_POLICIES = ("default", *WORKER_BASELINES)


@dataclass(frozen=True)
class WorkerSetup:
    """The simulated worker process and the run's parameters."""

    concurrency: int = 5
    boot_s: float = 45.0
    slo_ms: float = 60_000.0
    interval_s: float = 5.0
    grace_s: float = 30.0
    jobs_per_instance: float | None = None  # hirefire's ratio (default: concurrency)
    # the job source tells the jobs that ended between two readings (``Reading.finished``, as
    # the RQ source does); ``False``: unknown, as most sources
    finished: bool = True


class WorkerPolicy(Protocol):
    name: str

    def __call__(self, t: float, current: int, age_ms: float, depth: int, busy: int) -> int:
        """The quantity wanted at ``t`` (simulated seconds, a tick's time)."""
        ...

    def hold_until(self, k: int, current: int, busy: int) -> float:
        """With nothing due or booting and ``busy`` jobs running after tick ``k``: the tick up
        to which it holds ``current`` whatever the running jobs do, if no job arrives
        (``k``: no such promise; ``inf``: until a job arrives)."""
        ...


class WorkerEngine:
    """The daemon's policy engine, fed as the loop feeds it from a job source."""

    def __init__(self, cfg: PolicyConfig, *, wall0: float, name: str = "default") -> None:
        self.name = name
        self.cfg = cfg
        self.wall0 = wall0
        self.state = PolicyState(last_change=0.0)
        self._obs = Observation(0, None)
        self._now = Instant(0.0, wall0)
        self.decisions: dict[str, int] = {}  # reason -> count, for the decision summary
        # set by the replay: the instances serving (what the platform reports as ready)
        self.ready: Callable[[], int] | None = None
        # set by the replay: the jobs ended so far (a counter, as the workers' counters RQ
        # keeps); each reading's ``finished`` is its rise since the reading before. ``None``:
        # the source cannot tell (``finished`` unknown)
        self.done: Callable[[], int] | None = None
        self._done_last: int | None = None

    def __call__(self, t: float, current: int, age_ms: float, depth: int, busy: int) -> int:
        obs, now = self._obs, self._now
        obs.current = current
        obs.signal_ms = age_ms
        obs.status = Status.OK
        obs.depth = depth
        obs.busy = busy
        obs.ready = None if self.ready is None else self.ready()
        if self.done is not None:
            done, last = self.done(), self._done_last
            obs.finished = None if last is None else done - last
            self._done_last = done
        now.mono = t
        now.wall = self.wall0 + t
        decision, self.state = decide(self.cfg, self.state, obs, now)
        if decision.desired != current:
            reason = decision.reason.value
            self.decisions[reason] = self.decisions.get(reason, 0) + 1
        return decision.desired

    def hold_until(self, k: int, current: int, busy: int) -> float:
        # at the lower bound with nothing due, rules 4-9 hold until a job comes (busy jobs
        # only matter on the way down to 0); a schedule moves the bounds with the wall clock,
        # and a worker's learned bursts start instances ahead of them, so every tick is played
        # then
        # (and jobs ending are read at the tick they end, where the source tells)
        if self.cfg.schedule is None and current == self.cfg.low:
            if busy and self.done is not None:
                return k
            return math.inf if recurring(self.state) is None else k
        return k


class StaticWorkers:
    name = "static"

    def __init__(self, quantity: int) -> None:
        self.quantity = quantity

    def __call__(self, t: float, current: int, age_ms: float, depth: int, busy: int) -> int:
        return self.quantity

    def hold_until(self, k: int, current: int, busy: int) -> float:
        return math.inf


class StepWorkers(StepRule):
    """The hosted job-latency rule: fixed steps on the latency band, with its delays."""

    name = "step"

    def __call__(self, t: float, current: int, age_ms: float, depth: int, busy: int) -> int:
        if not self.checks.due(t):
            return current
        if current < self.low:
            self.clock = self.clock._replace(last_change=t)
            return self.low
        if current == 0 and (depth > 0 or age_ms > 0):
            self.clock = self.clock._replace(last_up=t, last_change=t)
            return 1
        want, self.clock = step_band(self.band, self.clock, t, current, age_ms)
        return want

    def hold_until(self, k: int, current: int, busy: int) -> float:
        return math.inf if current == self.low else k


class HireFireWorkers:
    """HireFire's job-queue manager: instances in proportion to the jobs in the queue."""

    name = "hirefire"

    def __init__(self, low: int, high: int, *, ratio: float, period: float = 60.0) -> None:
        self.low, self.high = low, high
        self.ratio = ratio
        self.checks = Every(period)

    def __call__(self, t: float, current: int, age_ms: float, depth: int, busy: int) -> int:
        if not self.checks.due(t):
            return current
        jobs = depth + busy
        want = min(self.high, max(self.low, math.ceil(jobs / self.ratio - 1e-9)))
        if want > current:
            return want
        if jobs == 0:  # not decrementable: down only once every job is processed
            return self.low
        return current

    def hold_until(self, k: int, current: int, busy: int) -> float:
        return math.inf if current == self.low and busy == 0 else k


class OracleWorkers:
    """Runs, at each tick, the most instances its plan needs over the next boot time."""

    name = "oracle"

    def __init__(self, plan: list[int], dt: float, boot_ticks: int, low: int, high: int) -> None:
        # within the bounds: a change the bounds hide is no change (whole-list, C speed)
        self.plan = list(map(min, map(max, plan, repeat(low)), repeat(high)))
        self.dt = dt
        self.lookahead = boot_ticks + 1
        self.low, self.high = low, high
        # where the plan changes: what it wants changes only as one of them enters or leaves
        # the window it looks at
        self.changes = list(compress(range(1, len(plan)), map(ne, plan[1:], plan[:-1])))

    def __call__(self, t: float, current: int, age_ms: float, depth: int, busy: int) -> int:
        k = round(t / self.dt) - 1  # the tick at t
        ahead = self.plan[k + 1 : k + 2 + self.lookahead]
        need = max(ahead) if ahead else 0
        return min(self.high, max(self.low, need))

    def hold_until(self, k: int, current: int, busy: int) -> float:
        if current != self((k + 1) * self.dt, current, 0.0, 0, busy):
            return k  # a downscale the model refused (busy instances): ask again next tick
        changes, span = self.changes, 1 + self.lookahead
        enter = bisect.bisect_right(changes, k + span)
        leave = bisect.bisect_right(changes, k + 1)
        nxt = math.inf
        if enter < len(changes):
            nxt = changes[enter] - span
        if leave < len(changes):
            nxt = min(nxt, changes[leave] - 1)
        return nxt


def oracle_plan(trace: JobTrace, setup: WorkerSetup, steps: int) -> list[int]:
    """Per step, the instances that start every job within the SLO, all slots pooled: at each
    step the fewest slots with which the jobs already due would all start by their deadline
    (due + SLO), FIFO, given when the running ones end; the jobs start on the slots as they
    come free."""
    dt = setup.interval_s
    slo = setup.slo_ms / 1000.0
    c = setup.concurrency
    plan = [0] * steps
    running: list[float] = []  # finish times (a heap)
    waiting: deque[tuple[float, float, float]] = deque()  # (arrival, deadline, duration)
    arrivals, durations = trace.arrivals, trace.durations
    n = len(arrivals)
    i = 0
    k = 0
    while k < steps:
        t = k * dt
        end = t + dt
        while running and running[0] <= t:
            heapq.heappop(running)
        while i < n and arrivals[i] < end:
            arrival = arrivals[i]
            waiting.append((arrival, arrival + slo, durations[i]))
            i += 1
        if not running and not waiting:
            if i >= n:
                break
            k = max(k + 1, int(arrivals[i] // dt))  # nothing to do until the next arrival
            continue
        lo, hi = len(running), len(running) + len(waiting)
        if not start_in_time(running, lo, t, waiting):
            lo = fewest_slots(running, t, waiting, lo + 1, hi)
        inst = math.ceil(lo / c)
        slots = running + [t] * (inst * c - len(running))
        heapq.heapify(slots)
        while waiting and slots and slots[0] < end:
            arrival, _, duration = waiting[0]
            start = max(slots[0], arrival)
            if start >= end:
                break
            waiting.popleft()
            heapq.heapreplace(slots, start + duration)
        running = [s for s in slots if s > t]
        heapq.heapify(running)
        plan[k] = inst
        k += 1
    return plan


def start_in_time(
    busy: list[float], slots: int, t: float, jobs: Collection[tuple[float, float, float]]
) -> bool:
    """Whether ``slots`` slots start every one of ``jobs`` (its earliest start, its deadline,
    its duration), in order, each on the slot free first, by its deadline: the first of them
    free when the jobs of ``busy`` (their end times) end, the others at ``t``."""
    if slots == 0:
        return not jobs
    free = busy + [t] * (slots - len(busy))
    heapq.heapify(free)
    for ready, deadline, duration in jobs:
        first = free[0]
        start = first if first > ready else ready
        if start > deadline:
            return False
        heapq.heapreplace(free, start + duration)
    return True


def fewest_slots(
    busy: list[float], t: float, jobs: Collection[tuple[float, float, float]], lo: int, hi: int
) -> int:
    """The fewest slots from ``lo`` to ``hi`` (with which they do) that start ``jobs`` in time
    (``start_in_time``), by bisection."""
    while lo < hi:
        mid = (lo + hi) // 2
        if start_in_time(busy, mid, t, jobs):
            hi = mid
        else:
            lo = mid + 1
    return lo


def boot_ticks(setup: WorkerSetup) -> int:
    """The ticks an instance takes to boot (the oracle asks this far ahead)."""
    return math.ceil(setup.boot_s / setup.interval_s - 1e-9)


def first_need(plan: list[int], setup: WorkerSetup) -> int:
    """The instances the oracle starts with (``OracleWorkers`` at the first tick): the most its
    plan needs over the first boot time and tick. Every policy starts there, so none gains or
    loses by where the replay begins."""
    return max(plan[: boot_ticks(setup) + 2], default=0)


@dataclass
class WorkerResult:
    policy: str
    scale: float
    instance_hours: float
    slo_attainment: float
    p95_wait_s: float
    p99_wait_s: float
    max_wait_s: float
    scale_events: int
    minutes: int
    mean_instances: float
    max_instances: int
    jobs: int
    interrupted_jobs: int
    interrupted_job_s: float
    job_s: float
    decisions: dict[str, int] = field(default_factory=dict)
    # per minute, for the report
    depth: list[float] = field(default_factory=list, repr=False)  # highest at a tick
    age: list[float] = field(default_factory=list, repr=False)  # highest oldest-job age (s)
    instances: list[int] = field(default_factory=list, repr=False)
    interruptions: list[int] = field(default_factory=list, repr=False)

    @property
    def interrupted_share(self) -> float:
        return self.interrupted_job_s / self.job_s if self.job_s > 0 else 0.0

    def figures(self) -> dict[str, float | int | str]:
        return {
            "policy": self.policy,
            "instance_hours": round(self.instance_hours, 2),
            "slo_attainment": round(self.slo_attainment, 5),
            "p95_queue_ms": round(1000 * self.p95_wait_s, 1),
            "p99_queue_ms": round(1000 * self.p99_wait_s, 1),
            "max_queue_ms": round(1000 * self.max_wait_s, 1),
            "scale_events": self.scale_events,
            "minutes": self.minutes,
            "mean_instances": round(self.mean_instances, 2),
            "max_instances": self.max_instances,
            "model": "jobs",
            "scale": self.scale,
            "jobs": self.jobs,
            "interrupted_jobs": self.interrupted_jobs,
            "interrupted_job_s": round(self.interrupted_job_s, 1),
            "interrupted_share": round(self.interrupted_share, 6),
        }


def _quantile(ordered: list[float], level: float) -> float:
    if not ordered:
        return 0.0
    return ordered[max(math.ceil(level * len(ordered)), 1) - 1]


@dataclass(frozen=True)
class WorkerSpec:
    """What it takes to build a worker policy (picklable): the engine's settings for
    ``default``, the band for ``step``."""

    name: str
    low: int
    high: int
    cfg: PolicyConfig | None = None
    up_ms: float = 10_000.0
    down_ms: float = 2_000.0

    def build(self, trace: JobTrace, setup: WorkerSetup, plan: list[int]) -> WorkerPolicy:
        if self.cfg is not None:
            return WorkerEngine(self.cfg, wall0=trace.start, name=self.name)
        if self.name == "static":
            return StaticWorkers(min(self.high, max(self.low, max(plan, default=1), 1)))
        if self.name == "step":
            return StepWorkers(self.low, self.high, up_ms=self.up_ms, down_ms=self.down_ms)
        if self.name == "hirefire":
            ratio = setup.jobs_per_instance or float(setup.concurrency)
            return HireFireWorkers(self.low, self.high, ratio=ratio)
        if self.name == "oracle":
            return OracleWorkers(plan, setup.interval_s, boot_ticks(setup), self.low, self.high)
        raise ValueError(f"unknown policy {self.name!r}")


def ticks_for(trace: JobTrace, setup: WorkerSetup) -> int:
    return max(1, math.ceil(trace.span_s / setup.interval_s - 1e-9))


def replay_jobs(
    trace: JobTrace,
    setup: WorkerSetup,
    spec: WorkerSpec,
    plan: list[int],
    *,
    scale: float = 1.0,
    series: bool = True,
    progress: Callable[[int, int], None] | None = None,
    policy: WorkerPolicy | None = None,
    stop_idle_only: bool = False,
) -> WorkerResult:
    """Run one policy over the job trace; ``plan`` is the oracle's (``oracle_plan``);
    ``policy``, when given, is run instead of the one ``spec`` builds (experiments), and
    ``stop_idle_only`` gives it the oracle's privilege of stopping idle instances only (the
    oracle always has it)."""
    dt = setup.interval_s
    n = ticks_for(trace, setup)
    if policy is None:
        policy = spec.build(trace, setup, plan)
    if spec.name in {"static", "oracle"}:
        quantity = policy(0.0, 0, 0.0, 0, 0)
    else:  # what the first jobs need, ready at once (as web replays start): the app exists
        quantity = min(spec.high, max(spec.low, first_need(plan, setup)))
    jobs = [
        Job(a, d, q)
        for a, d, q in zip(trace.arrivals, trace.durations, trace.queue_ids, strict=True)
    ]
    model = WorkerModel(
        jobs,
        len(trace.queues),
        concurrency=setup.concurrency,
        boot_s=setup.boot_s,
        quantity=quantity,
        grace_s=setup.grace_s,
        stop_idle_only=stop_idle_only or spec.name == "oracle",
    )
    # a reference that reads the model's state (benchmarks) is given it
    getattr(policy, "attach", lambda model: None)(model)
    if isinstance(policy, WorkerEngine):
        policy.ready = lambda: model.serving
        if setup.finished:
            policy.done = lambda: model.done
    per_minute = max(1, round(60.0 / dt))
    minutes = math.ceil(n / per_minute)
    depth_series = [0.0] * minutes if series else []
    changes = [(0, quantity)]
    signal, scale_to = model.signal, model.scale
    chunk = max(1, n // 100)
    next_report = chunk
    k = 0
    while k < n:
        t = (k + 1) * dt
        age_ms, depth, busy = signal(t)
        if series and depth:
            m = k // per_minute
            depth_series[m] = max(depth_series[m], depth)
        desired = policy(t, quantity, age_ms, depth, busy)
        if desired != quantity:
            got = scale_to(desired, t)
            if got != quantity:
                quantity = got
                changes.append((k + 1, quantity))
        k += 1
        if model.settled():
            hold = policy.hold_until(k - 1, quantity, model.running)
            if hold > k:
                # nothing the policy reads changes before the next arrival, and it holds till
                # ``hold`` (the oracle's acting ahead of arrivals is in its ``hold_until``): jump
                nxt = model.next_arrival()
                target = n if nxt == math.inf else int(nxt // dt) - 1
                if hold < target:
                    target = int(hold)
                if target > k:
                    k = min(target, n)
        if progress is not None and k >= next_report:
            progress(min(k, n), n)
            next_report = k + chunk
    end = n * dt
    model.close(end)
    events = len(changes) - 1
    ends = [k for k, _ in changes[1:]] + [n]
    instance_steps = sum((e - k) * q for (k, q), e in zip(changes, ends, strict=True))
    ok = sum(1 for m in range(minutes) if model.minute_age.get(m, 0.0) * 1000.0 <= setup.slo_ms)
    waits = sorted(model.waits)
    result = WorkerResult(
        policy=spec.name,
        scale=scale,
        instance_hours=model.paid_s / 3600.0,
        slo_attainment=ok / minutes if minutes else 1.0,
        p95_wait_s=_quantile(waits, 0.95),
        p99_wait_s=_quantile(waits, 0.99),
        max_wait_s=waits[-1] if waits else 0.0,
        scale_events=events,
        minutes=minutes,
        mean_instances=instance_steps / n if n else 0.0,
        max_instances=max(q for _, q in changes),
        jobs=len(jobs),
        interrupted_jobs=model.interrupted,
        interrupted_job_s=model.interrupted_s,
        job_s=math.fsum(trace.durations),
        decisions=dict(getattr(policy, "decisions", {})),
    )
    if series:
        from autoscaler.sim.runner import _per_minute_max

        result.depth = depth_series
        result.age = [model.minute_age.get(m, 0.0) for m in range(minutes)]
        result.instances = _per_minute_max(changes, n, per_minute)
        result.interruptions = [model.minute_interrupts.get(m, 0) for m in range(minutes)]
    return result
