"""The daemon's side of the history: the hook that records every tick, alert and config."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from autoscaler.config import Settings
from autoscaler.explain import sentence
from autoscaler.history import Event, HistoryStore, Minute, Recorder, TickFacts
from autoscaler.model import Action, Decision, Formation, Metric, Reading, Status
from autoscaler.redact import redact

_TRUSTED = (Status.OK, Status.SPARSE)


def settings_summary(settings: Settings) -> dict[str, Any]:
    """The settings in force, for the dashboard: per process its band and each setting."""
    processes: dict[str, Any] = {}
    for name, p in settings.processes.items():
        rows = []
        for field, info in type(p).model_fields.items():
            if field in ("name", "var_prefix"):
                continue
            alias = info.validation_alias if isinstance(info.validation_alias, str) else None
            var = alias or f"{p.var_prefix}{field.upper()}"
            rows.append([var, _show(getattr(p, field)), info.description or ""])
        up, down = p.up_threshold, p.down_threshold
        band = None
        if up is not None and down is not None:
            band = {"up_ms": round(up * 1000, 3), "down_ms": round(down * 1000, 3)}
        processes[name] = {"band": band, "metric": p.metric.value, "rows": rows}
    g = settings.glob
    glob_rows = [
        [
            info.validation_alias if isinstance(info.validation_alias, str) else field,
            _show(getattr(g, field)),
            info.description or "",
        ]
        for field, info in type(g).model_fields.items()
        if "url" not in field and "token" not in field and "key" not in field
    ]
    return {"processes": processes, "global": glob_rows}


def _in_use(reading: Reading | None) -> float | None:
    """Requests in service: the app's mean over the window where it reports one, else (web) the
    requests in flight the source saw at this tick."""
    if reading is None:
        return None
    if reading.in_use is not None:
        return reading.in_use
    if reading.metric is Metric.REQUEST_QUEUE_TIME and reading.busy is not None:
        return float(reading.busy)
    return None


def _show(value: Any) -> str:
    return "unset" if value is None else redact(str(value))[:120]


class ReportLike(Protocol):
    @property
    def wall(self) -> float: ...
    @property
    def mono(self) -> float: ...
    @property
    def decisions(self) -> Sequence[Decision]: ...
    @property
    def readings(self) -> Mapping[str, Reading | None]: ...
    @property
    def is_leader(self) -> bool: ...
    @property
    def formations(self) -> Mapping[str, Formation]: ...
    @property
    def learned(self) -> Mapping[str, Mapping[str, float | bool]]: ...


class HistoryHook:
    """Records each tick report (after the loop's own hooks); writes the daemon's clock and each
    process's state sentence and learned values (``policy.learned``) once a minute."""

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        log: Any,
        then: Any = None,
        simulated: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.then = then  # the hook this one wraps (alerts), called first
        self.log = log
        self.recorder = Recorder(store, on_error=self._down, on_recover=self._up)
        self._meta_minute = -1
        self._config_written = False
        self._wall = 0.0
        # the sim platform accelerates monotonic time only: its history runs on a wall clock
        # that starts at the real one and advances with the simulated seconds
        self.simulated = simulated
        self._origin: tuple[float, float] | None = None
        #: ``AUTOSCALER_DIGEST=weekly``: where the weekly digest goes (the alerts' webhook)
        self.digest_to: Callable[[str], None] | None = None
        #: the thread that tunes on the week and sends the digest, while it runs
        self.digest_thread: threading.Thread | None = None

    def _down(self, error: str) -> None:
        self.log.warning("history_unavailable", error=redact(error)[:200])

    def _up(self) -> None:
        self.log.info("history_recovered", lost_writes=self.recorder.failures)

    def alert(self, text: str) -> None:
        """An alert's text (the alerts' sender): kept as an event at the current tick's time."""
        self.recorder.alert(self._wall, text)

    def _clock(self, report: ReportLike) -> float:
        if not self.simulated:
            return report.wall
        if self._origin is None:
            self._origin = (report.wall, report.mono)
        return self._origin[0] + (report.mono - self._origin[1])

    def after_tick(self, report: ReportLike) -> None:
        wall = self._wall = self._clock(report)
        if self.then is not None:
            self.then.after_tick(report)
        facts = []
        for d in report.decisions:
            reading = report.readings.get(d.process)
            form = report.formations.get(d.process)
            facts.append(
                TickFacts(
                    d.process,
                    d.signal_ms,
                    d.status in _TRUSTED,
                    d.current,  # what the platform said this tick; a change shows next tick
                    ready=form.ready if form is not None else None,
                    rate_per_s=reading.rate_per_s if reading is not None else None,
                    in_use=_in_use(reading),
                    changed=d.action is not Action.HOLD,
                    action=d.action.value,
                    reason=d.reason.value,
                    desired=d.desired,
                )
            )
        if report.is_leader and not self._config_written:
            self._write_meta("settings", json.dumps(settings_summary(self.settings)))
            self.recorder.config(wall, "daemon started with the settings shown")
            self._config_written = True
        self.recorder.tick(wall, facts, leader=report.is_leader)
        minute = int(wall // 60)
        if report.is_leader and minute != self._meta_minute:
            self._meta_minute = minute
            self._write_meta("clock", repr(wall))
            for d in report.decisions:
                self._write_meta(
                    f"status:{d.process}", sentence(d, self.settings.processes[d.process])
                )
                self._write_meta(
                    f"learned:{d.process}", json.dumps(report.learned.get(d.process) or {})
                )
            if self.digest_to is not None:
                self._maybe_digest(wall)

    def _maybe_digest(self, wall: float) -> None:
        """When a week has passed since the last digest (kept in the store, so a restart or a
        new leader neither repeats nor skips it), read the week and hand it to a thread that
        runs the tune search on it and sends the digest: the tick goes on meanwhile."""
        from autoscaler.digest import WEEK_S, read_week

        assert self.digest_to is not None
        if self.digest_thread is not None and self.digest_thread.is_alive():
            return
        try:
            last = self.store.get_meta("digest_last")
            if last is None:
                self.store.put_meta("digest_last", repr(wall))
                return
            if wall - float(last) < WEEK_S:
                return
            minutes, events = read_week(self.store, list(self.settings.processes), wall)
            self.store.put_meta("digest_last", repr(wall))
        except Exception:  # the store's outage is reported by the recorder
            self.recorder.failures += 1
            return
        self.digest_thread = threading.Thread(
            target=self._send_digest,
            args=(minutes, events, wall),
            name="autoscaler-digest",
            daemon=True,
        )
        self.digest_thread.start()

    def _send_digest(
        self, minutes: Mapping[str, Sequence[Minute]], events: Sequence[Event], wall: float
    ) -> None:
        from autoscaler.digest import WEEK_S, summarise, tune_verdicts

        assert self.digest_to is not None
        bands = {
            name: p.up_threshold_ms if p.up_threshold is not None else None
            for name, p in self.settings.processes.items()
        }
        try:
            verdicts = tune_verdicts(minutes, events, self.settings)
        except Exception as exc:  # a digest without the verdict rather than none
            self.log.warning("digest_tune_failed", error=redact(repr(exc))[:200])
            verdicts = {}
        self.digest_to(summarise(minutes, events, bands, wall - WEEK_S, wall, verdicts=verdicts))

    def _write_meta(self, key: str, value: str) -> None:
        try:
            self.store.put_meta(key, value)
        except Exception:  # counted with the minutes: the recorder reports the outage
            self.recorder.failures += 1

    def capture(self, exc: BaseException) -> None:
        capture = getattr(self.then, "capture", None)
        if capture is not None:
            capture(exc)

    def close(self) -> None:
        try:
            self.recorder.flush()
        finally:
            close = getattr(self.then, "close", None)
            if close is not None:
                close()
            self.store.close()
