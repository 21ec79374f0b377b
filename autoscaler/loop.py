"""One tick of the daemon: lead -> sample -> read -> observe -> decide -> act -> settle -> record.

Each step is a function whose result the next one takes; the tick assigns what the daemon keeps
between ticks (policy state, writes of unknown outcome, a rate-limit block, refused writes) from
the values they return, in one place. No policy logic lives here: ``autoscaler.observe`` turns a
reading and the formation into the policy's input, ``policy.decide`` decides per process, and
this module sends the writes the decisions call for (when it is the leader and not in dry run)
and records what happened (log, metrics, alerts).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from autoscaler import logs
from autoscaler.clock import Clock
from autoscaler.config import Settings
from autoscaler.metrics import HealthState, Metrics
from autoscaler.model import Action, Decision, Formation, Instant, Reading
from autoscaler.observe import observe
from autoscaler.policy import PolicyConfig, PolicyState, decide, initial_state, learned
from autoscaler.policy_store import Learned
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
    StateStore,
    WriteUnknown,
)
from autoscaler.redact import redact

#: how long a write the platform refused for good is not sent again, unless the formation, the
#: direction of the change or the bounds in force change first (a restart forgets it too)
REFUSED_HOLD_S = 3600.0

#: how often each process gets an info ``summary`` line (seconds of the daemon's clock; the CLI
#: stretches it by the speed of the simulated app, so a person reads one every ten real minutes)
SUMMARY_EVERY_S = 600.0

T = TypeVar("T")


class Outcome(StrEnum):
    """What became of one process's decision on one tick (logged as ``outcome=``)."""

    UNCHANGED = "unchanged"  # a hold, or nothing to change
    WRITTEN = "written"  # sent and applied
    DRY_RUN = "dry_run"  # decided, not sent (AUTOSCALER_DRY_RUN)
    FOLLOWER = "follower"  # decided, not sent: another daemon holds the lease
    NOT_SENT = "not_sent"  # deferred, refused or failed: the state stays as it was
    UNKNOWN = "unknown"  # sent, outcome unknown: adopted if the next read shows it applied
    PREVIEW = "preview"  # ``explain``: decided, nothing sent, nothing remembered


@dataclass
class TickReport:
    """What one tick saw and did; handed to alerts and printed by ``once``/``explain``."""

    wall: float
    mono: float
    decisions: list[Decision] = field(default_factory=list)
    readings: dict[str, Reading | None] = field(default_factory=dict)
    formations: dict[str, Formation] = field(default_factory=dict)  # as the platform said
    source_errors: dict[str, str] = field(default_factory=dict)
    #: every formation read that failed, joined (``read_errors`` has them per process)
    platform_error: str | None = None
    read_errors: dict[str, str] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    write_error: str | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    is_leader: bool = True
    lock_error: str | None = None
    epoch: int | None = None
    dry_run: bool = False
    #: per process, what the policy has learned so far (``policy.learned``), for the history
    learned: dict[str, dict[str, float | bool]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The tick did its work: the formation was read and decisions were made (for at least
        one process; a process whose read failed is in ``read_errors``)."""
        return self.platform_error is None or bool(self.decisions)


class AfterTick(Protocol):
    def after_tick(self, report: TickReport) -> None: ...


@dataclass(frozen=True)
class Leadership:
    """The result of asking the lock: leader (with its lease and epoch) or not, and why not."""

    lease: Lease | None
    is_leader: bool
    error: str | None = None

    @property
    def epoch(self) -> int | None:
        return None if self.lease is None else self.lease.epoch


@dataclass(frozen=True)
class Pending:
    """A write whose outcome is unknown: the state to adopt if it turns out to have applied."""

    quantity: int
    state: PolicyState


@dataclass(frozen=True)
class Refused:
    """A write the platform refused for good: not sent again while its key holds."""

    current: int
    up: bool
    bounds: tuple[int, int]
    at: float  # monotonic
    why: str

    def holds(self, d: Decision, mono: float) -> bool:
        return (
            d.current == self.current
            and (d.desired > d.current) == self.up
            and (d.low, d.high) == self.bounds
            and mono - self.at < REFUSED_HOLD_S
        )


@dataclass(frozen=True)
class Planned:
    """One process's decision on one tick, with the state before and the state ``decide``
    returned; the settle step picks which one the daemon keeps."""

    decision: Decision
    before: PolicyState
    after: PolicyState
    deploying: bool


@dataclass(frozen=True)
class Acted:
    """What the act step did: per process outcome, the writes applied, why others were not."""

    outcomes: dict[str, Outcome]
    writes: dict[str, int]
    errors: list[str]
    blocked_until: float
    refused: dict[str, Refused]
    is_leader: bool


def _forget_known(state: PolicyState) -> PolicyState:
    """A copy of ``state`` that adopts no quantity on the next tick (``known`` unset)."""
    out = copy.copy(state)
    out.known = None
    return out


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
        stopping: threading.Event | None = None,
        summary_every: float = SUMMARY_EVERY_S,
        store: StateStore | None = None,
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
        self.learned = Learned(store, self.log)  # what the policy learned, across restarts
        self.dry_run = settings.glob.dry_run
        self.processes = list(settings.processes)
        self.configs = {p: PolicyConfig.from_settings(s) for p, s in settings.processes.items()}
        # kept between ticks; each is replaced (never edited) by what a tick returns
        self.states: dict[str, PolicyState] = {}
        self.pending: dict[str, Pending] = {}
        self.refused: dict[str, Refused] = {}
        self.lease: Lease | None = None
        self.write_blocked_until = 0.0  # monotonic; set by rate limits
        #: once set (by a signal), no write is sent
        self.stopping = stopping if stopping is not None else threading.Event()
        self.lock_timeout = settings.tick_timeout / 2  # acquire + valid stay within one timeout
        self._executor = ThreadPoolExecutor(
            max_workers=max(2, len(self.sources)), thread_name_prefix="source"
        )
        self._inflight: dict[str, Future[Reading]] = {}
        self._lock_call: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self._logbook = logs.Logbook(summary_every)

    # ---- the tick -------------------------------------------------------------------------

    def tick(self, *, write: bool = True) -> TickReport:
        """One tick. ``write=False`` decides without acting and without changing state."""
        with self._tick_lock:
            now = self.clock.now()
            report = TickReport(now.wall, now.mono, dry_run=self.dry_run)
            try:
                self._tick(report, now, write)
            except Exception as exc:  # the next tick must run whatever happened here
                report.platform_error = report.platform_error or redact(
                    f"unexpected {type(exc).__name__}: {exc}"
                )
                self.log.error("tick_failed", error=report.platform_error)
                capture = getattr(self.alerts, "capture", None)
                if capture is not None:  # to Sentry, when configured (autoscaler/alerts.py)
                    capture(exc)
            self._record(report, now)
            return report

    def idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a running tick to finish; True once none runs."""
        if not self._tick_lock.acquire(timeout=timeout):
            return False
        self._tick_lock.release()
        return True

    def _tick(self, report: TickReport, now: Instant, write: bool) -> None:
        lead = Leadership(None, True)
        if write and self.lock is not None:
            lead = self.lead()
            self.lease = lead.lease  # released at close
        report.is_leader, report.epoch, report.lock_error = lead.is_leader, lead.epoch, lead.error

        readings = self.sample(now.wall)
        for process, reading in readings.items():
            if isinstance(reading, SourceError):
                report.source_errors[process] = redact(str(reading))
                self.metrics.source_errors.labels(process).inc()
            else:
                report.readings[process] = reading

        formations = self.read()
        report.read_errors = {p: f for p, f in formations.items() if isinstance(f, str)}
        report.formations = {p: f for p, f in formations.items() if isinstance(f, Formation)}
        if report.read_errors:
            report.platform_error = "; ".join(report.read_errors.values())

        planned = self.plan(readings, formations, now)
        report.decisions = [p.decision for p in planned]
        if not write:
            report.outcomes = {p.decision.process: Outcome.PREVIEW for p in planned}
            return
        acted = self.act(planned, lead, now.mono)
        report.outcomes, report.writes = acted.outcomes, acted.writes
        report.write_error = "; ".join(acted.errors) or None
        report.is_leader = acted.is_leader
        self.write_blocked_until, self.refused = acted.blocked_until, acted.refused
        self.states, self.pending = self.settle(planned, acted.outcomes, formations)
        self.learned.maybe_save(self.states, now.mono, report.is_leader)

    # ---- lead -----------------------------------------------------------------------------

    def _bounded(self, what: str, call: Callable[[], T]) -> T:
        """Run a lock call with the lock timeout; raise ``TimeoutError`` when it does not answer
        (the call is abandoned on its daemon thread; while it hangs, later calls fail at once)."""
        if self._lock_call is not None and self._lock_call.is_alive():
            raise TimeoutError(f"an earlier lock call still has no answer ({what} not tried)")
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = call()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"lock-{what}", daemon=True)
        self._lock_call = thread
        thread.start()
        thread.join(self.lock_timeout)
        if thread.is_alive():
            raise TimeoutError(
                f"the lock backend gave no answer to {what} in {self.lock_timeout:g}s"
            )
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value

    def lead(self) -> Leadership:
        """Become or stay leader; a lock call that fails or times out means not leader."""
        assert self.lock is not None
        lock = self.lock
        try:
            lease = self._bounded("acquire", lock.acquire)
        except Exception as exc:
            return Leadership(None, False, redact(f"{type(exc).__name__}: {exc}"))
        return Leadership(lease, lease is not None)

    def _still_leader(self, lead: Leadership) -> bool:
        if self.lock is None:
            return True
        lock, lease = self.lock, lead.lease
        if lease is None:
            return False
        try:
            return self._bounded("valid", lambda: lock.valid(lease))
        except Exception:
            return False

    # ---- sample ---------------------------------------------------------------------------

    def sample(self, wall: float) -> dict[str, Reading | SourceError]:
        """Poll every source concurrently; each gets the tick timeout. Failures are values."""
        timeout = self.settings.tick_timeout
        futures: dict[str, Future[Reading]] = {}
        out: dict[str, Reading | SourceError] = {}
        for process in self.processes:
            source = self.sources.get(process)
            if source is None:
                out[process] = SourceError("no source configured")
                continue
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

    # ---- read -----------------------------------------------------------------------------

    def read(self) -> dict[str, Formation | str]:
        """Each process's formation, or why it could not be read. When reading them together
        fails, each is read on its own, so one misconfigured process fails only itself (not on a
        rate limit, which would only spend more of the budget)."""
        processes = self.processes
        try:
            return self._read(processes)
        except PlatformError as exc:
            self.metrics.platform_errors.labels(type(exc).__name__).inc()
            if len(processes) == 1 or isinstance(exc, RateLimited):
                why = redact(str(exc)) or type(exc).__name__
                return dict.fromkeys(processes, why)
        out: dict[str, Formation | str] = {}
        for process in processes:
            try:
                out.update(self._read([process]))
            except PlatformError as exc:
                out[process] = redact(str(exc)) or type(exc).__name__
        return out

    def _read(self, processes: Sequence[str]) -> dict[str, Formation | str]:
        got = self.platform.read(processes)
        return {p: got.get(p) or f"the platform reported no {p!r} process" for p in processes}

    # ---- observe and decide ---------------------------------------------------------------

    def plan(
        self,
        readings: Mapping[str, Reading | SourceError],
        formations: Mapping[str, Formation | str],
        now: Instant,
    ) -> list[Planned]:
        """Observe and decide each process whose formation was read."""
        out: list[Planned] = []
        for process in self.processes:
            form = formations.get(process)
            if not isinstance(form, Formation):
                continue
            ps = self.settings.processes[process]
            assert ps.stale_after is not None
            reading = readings.get(process)
            obs = observe(
                reading if isinstance(reading, Reading) else None,
                form,
                stale_after=ps.stale_after,
                min_samples=ps.min_samples,
            )
            before = self._state_for(process, form, now)
            decision, after = decide(self.configs[process], before, obs, now)
            out.append(Planned(decision, before, after, form.deploying))
        return out

    def _state_for(self, process: str, form: Formation, now: Instant) -> PolicyState:
        """The state to decide from: the state an unknown write would have led to if the
        formation shows it applied; else the kept state (adopting nothing when a write of
        unknown outcome did not apply); else a first state."""
        pending = self.pending.get(process)
        if pending is not None and form.quantity == pending.quantity:
            return pending.state  # the unknown write did apply
        state = self.states.get(process)
        if state is None:
            return self.learned.restore(process, initial_state(form.updated_at, now), now.mono)
        if pending is not None:  # it did not apply (or someone changed it again)
            return _forget_known(state)
        return state

    # ---- act ------------------------------------------------------------------------------

    def act(self, planned: Sequence[Planned], lead: Leadership, mono: float) -> Acted:
        """Send the changes the decisions call for, or say why not, per process."""
        outcomes: dict[str, Outcome] = {}
        errors: list[str] = []
        refused = {p: r for p, r in self.refused.items() if mono - r.at < REFUSED_HOLD_S}
        targets: dict[str, int] = {}
        expected: dict[str, int] = {}
        for p in planned:
            d = p.decision
            if d.action is Action.HOLD or d.desired == d.current:
                outcomes[d.process] = Outcome.UNCHANGED
            elif p.deploying:  # the platform would refuse or race the release: next tick
                outcomes[d.process] = Outcome.NOT_SENT
                errors.append(f"{d.process}: a deploy is in progress, change deferred")
            elif self.dry_run:
                outcomes[d.process] = Outcome.DRY_RUN
            elif not lead.is_leader:
                outcomes[d.process] = Outcome.FOLLOWER
            elif d.process in refused and refused[d.process].holds(d, mono):
                outcomes[d.process] = Outcome.NOT_SENT
                errors.append(_not_resent(d.process, refused[d.process], mono))
            else:
                refused.pop(d.process, None)
                targets[d.process] = d.desired
                expected[d.process] = d.current
        acted = Acted(outcomes, {}, errors, self.write_blocked_until, refused, lead.is_leader)
        if targets:
            acted = self._write(acted, targets, expected, lead=lead, planned=planned, mono=mono)
        if acted.errors:
            self.metrics.platform_errors.labels("write").inc()
        return acted

    def _write(
        self,
        acted: Acted,
        targets: dict[str, int],
        expected: dict[str, int],
        *,
        lead: Leadership,
        planned: Sequence[Planned],
        mono: float,
    ) -> Acted:
        outcomes = {**acted.outcomes, **dict.fromkeys(targets, Outcome.NOT_SENT)}
        errors, refused, blocked = list(acted.errors), dict(acted.refused), acted.blocked_until
        leader = acted.is_leader
        if self.stopping.is_set():
            errors.append("shutting down: write not sent")
        elif mono < blocked:
            errors.append(f"rate limited for {blocked - mono:.0f}s more: write not sent")
        elif not self._still_leader(lead):
            errors.append("the lease is no longer valid: write not sent")
            leader = False
        else:
            try:
                self.platform.scale(targets, expected)
            except WriteUnknown as exc:
                errors.append(redact(f"outcome unknown: {exc}"))
                outcomes.update(dict.fromkeys(targets, Outcome.UNKNOWN))
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else 60.0
                blocked = mono + wait
                errors.append(redact(f"rate limited, retrying in {wait:g}s: {exc}"))
            except Conflict as exc:
                errors.append(redact(f"not sent, the formation changed meanwhile: {exc}"))
            except Rejected as exc:
                if exc.retryable:
                    errors.append(redact(f"rejected (will retry): {exc}"))
                else:
                    why = redact(str(exc))
                    errors.append(
                        f"rejected (needs operator action): {why}; not sent again for "
                        f"{REFUSED_HOLD_S / 60:g} minutes unless the formation, the direction of "
                        "the change or the bounds change"
                    )
                    for p in planned:
                        d = p.decision
                        if d.process in targets:
                            up = d.desired > d.current
                            refused[d.process] = Refused(d.current, up, (d.low, d.high), mono, why)
            except PlatformError as exc:
                errors.append(redact(f"{type(exc).__name__}: {exc}"))
            else:
                outcomes.update(dict.fromkeys(targets, Outcome.WRITTEN))
                for process in targets:
                    self.metrics.writes.labels(process).inc()
                return Acted(outcomes, dict(targets), errors, blocked, refused, leader)
        return Acted(outcomes, {}, errors, blocked, refused, leader)

    # ---- settle ---------------------------------------------------------------------------

    def settle(
        self,
        planned: Sequence[Planned],
        outcomes: Mapping[str, Outcome],
        formations: Mapping[str, Formation | str],
    ) -> tuple[dict[str, PolicyState], dict[str, Pending]]:
        """The state each process keeps after this tick: the one place that decides it.

        Unchanged or written: what ``decide`` returned. Dry run or follower: that too, with no
        quantity to adopt (timers run as if it acted; the quantity stays). Not sent: the state
        from before (no cooldown starts). Unknown: the state from before, and the new one kept
        aside to adopt if the next read shows the write applied."""
        states = dict(self.states)
        pending = {p: v for p, v in self.pending.items() if isinstance(formations.get(p), str)}
        for p in planned:
            process = p.decision.process
            outcome = outcomes[process]
            if outcome in (Outcome.UNCHANGED, Outcome.WRITTEN):
                states[process] = p.after
            elif outcome in (Outcome.DRY_RUN, Outcome.FOLLOWER):
                states[process] = _forget_known(p.after)
            elif outcome is Outcome.UNKNOWN:
                states[process] = p.before
                pending[process] = Pending(p.decision.desired, p.after)
            else:
                states[process] = p.before
        return states, pending

    # ---- record ---------------------------------------------------------------------------

    def _record(self, report: TickReport, now: Instant) -> None:
        m = self.metrics
        m.leader.set(1 if report.is_leader else 0)
        for d in report.decisions:
            m.record(d)
            reading = report.readings.get(d.process)
            if reading is not None and reading.age_s is not None:
                m.sample_age.labels(d.process).set(reading.age_s)
            state = self.states.get(d.process)
            if state is not None and state.capacity is not None:
                m.capacity.labels(d.process).set(state.capacity)
            if state is not None and state.boot is not None:
                m.boot.labels(d.process).set(state.boot)
            if state is not None:
                report.learned[d.process] = learned(state, self.configs.get(d.process))
            self._log_decision(report, d, reading)
        book = self._logbook
        for kind, text, level in (
            ("write_failed", report.write_error, "warning"),
            ("platform_read_failed", report.platform_error, "error"),
            ("lock_failed", report.lock_error, "error"),
        ):
            book.problem(self.log, kind, text, level, epoch=report.epoch)
        decided = {x.process: x for x in report.decisions}
        for process in self.processes:
            outcome = report.outcomes.get(process)
            book.summarise(self.log, process, decided.get(process), outcome, now.mono)
        if report.ok:
            m.last_success.set(report.wall)
            if self.health is not None:
                self.health.last_success = report.mono
        if self.alerts is not None:
            try:
                self.alerts.after_tick(report)
            except Exception as exc:
                self.log.error("alerts_failed", error=redact(str(exc)))

    def _log_decision(self, report: TickReport, d: Decision, reading: Reading | None) -> None:
        """One ``decision`` event per process: at info when it changes the formation (or adopts
        someone else's change), at debug when it holds."""
        fields: dict[str, Any] = {
            "process": d.process,
            "action": d.action.value,
            "current": d.current,
            "desired": d.desired,
            "signal_ms": None if d.signal_ms is None else round(d.signal_ms, 1),
            "reason": d.reason.value,
            "outcome": report.outcomes.get(d.process, Outcome.PREVIEW).value,
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
        # what one instance carries (requests/s; sure, or only a floor), what it serves at
        # once, how long an upscale takes to serve: as learned so far (``policy.learned``)
        fields.update(report.learned.get(d.process, {}))
        if self.lock is not None:
            fields["leader"] = report.is_leader
            fields["epoch"] = report.epoch
        changes = d.action is not Action.HOLD and d.desired != d.current
        (self.log.info if changes or d.adopted else self.log.debug)("decision", **fields)

    def close(self) -> None:
        self.stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.lock is not None and self.lease is not None:
            lock, lease = self.lock, self.lease
            try:
                self._bounded("release", lambda: lock.release(lease))
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


def _not_resent(process: str, r: Refused, mono: float) -> str:
    left = max(0.0, REFUSED_HOLD_S - (mono - r.at))
    # starts as the refusal's own message did, so that alerts see one cause, not a new one
    return (
        f"rejected (needs operator action), not re-sent: {process}: the platform refused this "
        f"change {mono - r.at:.0f}s ago ({r.why}); sent again when the formation, the direction "
        f"of the change or the bounds change, or in {left / 60:.0f} minutes"
    )
