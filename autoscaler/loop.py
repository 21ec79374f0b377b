"""One tick of the daemon: sample, read the formation, decide, act, record.

No policy logic lives here: the loop turns readings into observations, calls ``policy.decide``
per process, sends the writes the decisions call for (when it is the leader and not in dry run)
and records what happened (one ``decision`` log event per process, metrics, alerts).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

from autoscaler import logs
from autoscaler.clock import Clock
from autoscaler.config import Settings
from autoscaler.metrics import HealthState, Metrics
from autoscaler.model import Action, Decision, Formation, Metric, Observation, Reading, Status
from autoscaler.policy import PolicyConfig, PolicyState, decide, initial_state
from autoscaler.ports import (
    Conflict,
    Lease,
    Lock,
    Platform,
    PlatformError,
    RateLimited,
    Rejected,
    Source,
    SourceError,
    WriteUnknown,
)
from autoscaler.redact import redact


@dataclass
class TickReport:
    """What one tick saw and did; handed to alerts and printed by ``once``/``explain``."""

    wall: float
    mono: float
    decisions: list[Decision] = field(default_factory=list)
    readings: dict[str, Reading | None] = field(default_factory=dict)
    formations: dict[str, Formation] = field(default_factory=dict)  # as the platform said
    source_errors: dict[str, str] = field(default_factory=dict)
    platform_error: str | None = None
    writes: dict[str, int] = field(default_factory=dict)
    write_error: str | None = None
    is_leader: bool = True
    lock_error: str | None = None
    epoch: int | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """The tick did its work: the formation was read and decisions were made."""
        return self.platform_error is None


class AfterTick(Protocol):
    def after_tick(self, report: TickReport) -> None: ...


@dataclass
class _Pending:
    """A write whose outcome is unknown: the state to adopt if it turns out to have applied."""

    quantity: int
    state: PolicyState


class Autoscaler:
    """Holds per-process policy state across ticks. ``tick()`` is the unit the scheduler runs."""

    def __init__(
        self,
        settings: Settings,
        platform: Platform,
        sources: Mapping[str, Source],
        clock: Clock,
        *,
        lock: Lock | None = None,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
        alerts: AfterTick | None = None,
        log: Any = None,
    ) -> None:
        self.settings = settings
        self.platform = platform
        self.sources = dict(sources)
        self.clock = clock
        self.lock = lock
        self.metrics = metrics or Metrics()
        self.health = health
        self.alerts = alerts
        self.log = log or logs.get()
        self.dry_run = settings.glob.dry_run
        self.processes = list(settings.processes)
        self.configs = {p: PolicyConfig.from_settings(s) for p, s in settings.processes.items()}
        self.states: dict[str, PolicyState] = {}
        self.pending: dict[str, _Pending] = {}
        self.lease: Lease | None = None
        self.write_blocked_until = 0.0  # monotonic; set by rate limits
        self.stopping = threading.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=max(2, len(self.sources)), thread_name_prefix="source"
        )
        self._inflight: dict[str, Future[Reading]] = {}
        self._tick_lock = threading.Lock()

    # ---- sampling -------------------------------------------------------------------------

    def sample(self, wall: float) -> dict[str, Reading | SourceError]:
        """Poll every source concurrently; each gets the tick timeout. Failures are values."""
        timeout = self.settings.tick_timeout
        futures: dict[str, Future[Reading]] = {}
        out: dict[str, Reading | SourceError] = {}
        for process, source in self.sources.items():
            previous = self._inflight.get(process)
            if previous is not None and not previous.done():
                out[process] = SourceError("the previous poll is still running (timed out)")
                continue
            futures[process] = self._executor.submit(source.sample, wall)
            self._inflight[process] = futures[process]
        for process, future in futures.items():
            try:
                out[process] = future.result(timeout=timeout)
            except FutureTimeout:
                out[process] = SourceError(f"no answer within {timeout:g}s")
            except SourceError as exc:
                out[process] = exc
            except Exception as exc:  # an adapter bug must not stop the daemon
                out[process] = SourceError(f"unexpected {type(exc).__name__}: {exc}")
        return out

    def observe(self, process: str, current: int, reading: Reading | SourceError) -> Observation:
        """Turn a reading into the policy's input: decide how far it can be trusted."""
        if isinstance(reading, SourceError):
            return Observation(current, None, Status.FAILED)
        ps = self.settings.processes[process]
        value = reading.value_ms
        if value is not None and not math.isfinite(value):
            return Observation(current, None, Status.FAILED, reading.depth, reading.busy)
        if value is None or reading.age_s is None:
            return Observation(current, None, Status.MISSING, reading.depth, reading.busy)
        assert ps.stale_after is not None
        if reading.age_s > ps.stale_after:
            return Observation(current, value, Status.STALE, reading.depth, reading.busy)
        status = Status.OK
        if reading.metric is Metric.REQUEST_QUEUE_TIME and 0 < reading.samples < ps.min_samples:
            status = Status.SPARSE
        return Observation(
            current, max(0.0, value), status, reading.depth, reading.busy, reading.rate_per_s
        )

    # ---- the tick -------------------------------------------------------------------------

    def tick(self, *, write: bool = True) -> TickReport:
        """One tick. ``write=False`` decides without acting and without changing state."""
        with self._tick_lock:
            now = self.clock.now()
            report = TickReport(now.wall, now.mono, dry_run=self.dry_run)
            try:
                self._tick(report, write)
            except Exception as exc:  # the next tick must run whatever happened here
                report.platform_error = report.platform_error or redact(
                    f"unexpected {type(exc).__name__}: {exc}"
                )
                self.log.error("tick_failed", error=report.platform_error)
                capture = getattr(self.alerts, "capture", None)
                if capture is not None:  # to Sentry, when configured (autoscaler/alerts.py)
                    capture(exc)
            self._record(report)
            return report

    def _tick(self, report: TickReport, write: bool) -> None:
        now = self.clock.now()
        if write and self.lock is not None:
            try:
                self.lease = self.lock.acquire()
            except Exception as exc:
                self.lease = None
                report.lock_error = redact(f"{type(exc).__name__}: {exc}")
            report.is_leader = self.lease is not None
            report.epoch = self.lease.epoch if self.lease is not None else None

        readings = self.sample(now.wall)
        try:
            formation = self.platform.read(self.processes)
        except PlatformError as exc:
            report.platform_error = redact(str(exc)) or type(exc).__name__
            self.metrics.platform_errors.labels(type(exc).__name__).inc()
            self._log_readings_only(report, readings)
            return

        next_states: dict[str, PolicyState] = {}
        targets: dict[str, int] = {}
        expected: dict[str, int] = {}
        for process in self.processes:
            form = formation.get(process)
            if form is None:
                report.platform_error = f"the platform reported no {process!r} process"
                continue
            report.formations[process] = form
            state = self._state_for(process, form, now)
            reading = readings.get(process) or SourceError("no source configured")
            report.readings[process] = reading if isinstance(reading, Reading) else None
            if isinstance(reading, SourceError):
                report.source_errors[process] = redact(str(reading))
                self.metrics.source_errors.labels(process).inc()
            obs = self.observe(process, form.quantity, reading)
            obs.ready = form.ready
            decision, new_state = decide(self.configs[process], state, obs, now)
            report.decisions.append(decision)
            next_states[process] = new_state
            if decision.action is Action.HOLD or decision.desired == decision.current:
                continue
            if form.deploying:  # the platform would refuse or race the release: next tick
                report.write_error = f"{process}: a deploy is in progress, change deferred"
                del next_states[process]
                continue
            targets[process] = decision.desired
            expected[process] = decision.current

        if not write:
            return
        acting = bool(targets) and not self.dry_run and report.is_leader
        for process, new_state in next_states.items():
            if process not in targets or acting:
                continue
            # not acting (dry run or follower): keep timers as if acted, but the quantity stays
            new_state.known = None
        if acting and not self.stopping.is_set():
            self._write(report, targets, expected, next_states, now.mono)
        elif acting:
            report.write_error = "shutting down: write not sent"
            for process in targets:
                next_states.pop(process)
        self.states.update(next_states)

    def _state_for(self, process: str, form: Formation, now: Any) -> PolicyState:
        pending = self.pending.pop(process, None)
        if pending is not None and form.quantity == pending.quantity:
            return pending.state  # the unknown write did apply
        state = self.states.get(process)
        if state is None:
            state = initial_state(form.updated_at, now)
            self.states[process] = state
        elif pending is not None:
            state.known = None  # it did not apply (or someone changed it again): no adoption
        return state

    def _write(
        self,
        report: TickReport,
        targets: dict[str, int],
        expected: dict[str, int],
        next_states: dict[str, PolicyState],
        mono: float,
    ) -> None:
        def keep_old() -> None:
            for process in targets:
                next_states.pop(process, None)

        if mono < self.write_blocked_until:
            report.write_error = (
                f"rate limited for {self.write_blocked_until - mono:.0f}s more: write not sent"
            )
            keep_old()
            return
        if self.lock is not None and (self.lease is None or not self.lock.valid(self.lease)):
            report.write_error = "the lease is no longer valid: write not sent"
            report.is_leader = False
            keep_old()
            return
        try:
            self.platform.scale(targets, expected)
        except WriteUnknown as exc:
            report.write_error = redact(f"outcome unknown: {exc}")
            for process, quantity in targets.items():
                self.pending[process] = _Pending(quantity, next_states.pop(process))
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 60.0
            self.write_blocked_until = mono + wait
            report.write_error = redact(f"rate limited, retrying in {wait:g}s: {exc}")
            keep_old()
        except Conflict as exc:
            report.write_error = redact(f"not sent, the formation changed meanwhile: {exc}")
            keep_old()
        except Rejected as exc:
            later = "will retry" if exc.retryable else "needs operator action"
            report.write_error = redact(f"rejected ({later}): {exc}")
            keep_old()
        except PlatformError as exc:
            report.write_error = redact(f"{type(exc).__name__}: {exc}")
            keep_old()
        else:
            report.writes = dict(targets)
            for process in targets:
                self.metrics.writes.labels(process).inc()
        if report.write_error:
            self.metrics.platform_errors.labels("write").inc()

    # ---- recording ------------------------------------------------------------------------

    def _log_readings_only(
        self, report: TickReport, readings: Mapping[str, Reading | SourceError]
    ) -> None:
        for process, reading in readings.items():
            if isinstance(reading, SourceError):
                report.source_errors[process] = redact(str(reading))
            else:
                report.readings[process] = reading

    def _record(self, report: TickReport) -> None:
        m = self.metrics
        m.leader.set(1 if report.is_leader else 0)
        for d in report.decisions:
            m.record(d)
            reading = report.readings.get(d.process)
            if reading is not None and reading.age_s is not None:
                m.sample_age.labels(d.process).set(reading.age_s)
            fields: dict[str, Any] = {
                "process": d.process,
                "action": d.action.value,
                "current": d.current,
                "desired": d.desired,
                "signal_ms": None if d.signal_ms is None else round(d.signal_ms, 1),
                "reason": d.reason.value,
                "dry_run": self.dry_run,
                "status": d.status.value,
                "bounds": f"{d.low}..{d.high}",
            }
            if reading is not None:
                fields["samples"] = reading.samples
            if d.process in report.source_errors:
                fields["error"] = report.source_errors[d.process]
            if d.adopted:
                fields["adopted"] = True
            state = self.states.get(d.process)
            if state is not None and state.capacity is not None:
                # what one instance carries, as learned for the forecast (requests/s)
                fields["capacity"] = round(state.capacity, 1)
                m.capacity.labels(d.process).set(state.capacity)
            if self.lock is not None:
                fields["leader"] = report.is_leader
                fields["epoch"] = report.epoch
            self.log.info("decision", **fields)
        if report.writes:
            self.log.info("scaled", epoch=report.epoch, **report.writes)
        if report.write_error:
            self.log.warning("write_failed", error=report.write_error, epoch=report.epoch)
        if report.platform_error:
            self.log.error("platform_read_failed", error=report.platform_error)
        if report.lock_error:
            self.log.error("lock_failed", error=report.lock_error)
        if report.ok:
            m.last_success.set(report.wall)
            if self.health is not None:
                self.health.last_success = report.mono
        if self.alerts is not None:
            try:
                self.alerts.after_tick(report)
            except Exception as exc:
                self.log.error("alerts_failed", error=redact(str(exc)))

    def close(self) -> None:
        self.stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.lock is not None and self.lease is not None:
            try:
                self.lock.release(self.lease)
            except Exception as exc:
                self.log.warning("lock_release_failed", error=redact(str(exc)))
            self.lease = None
        for closable in [*self.sources.values(), self.platform, self.lock]:
            if closable is None:
                continue
            try:
                closable.close()
            except Exception as exc:
                self.log.warning("close_failed", error=redact(str(exc)))
