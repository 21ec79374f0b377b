"""Alerts to a Slack-compatible incoming webhook (``AUTOSCALER_NOTIFY_URL``), and to Sentry.

Conditions, each per process where it applies, checked after every tick:

- ``at_max``: the signal stays above the band while the process is at its maximum;
- ``signal``: the signal is missing, stale or failing (so the daemon cannot scale down);
- ``platform``: reading the formation fails, or writes keep failing;
- ``lock``: the lock backend is unreachable, so no daemon may write.

A condition alerts once it has held for ``AUTOSCALER_ALERT_AFTER`` (default 10 minutes), and
says "resolved" when it clears. Losing the lease while leader alerts at once. Only the leader
sends the per-process alerts, so two daemons do not double them.

Rate limits, so that a flapping condition cannot flood a channel: one condition alerts at most
once per hour, and at most 10 messages go out per hour in all (the next message then says how
many were held back). Messages are sent by a background thread and never delay a tick; every
message passes through ``redact``.

With ``SENTRY_DSN`` set and ``sentry-sdk`` installed (the ``sentry`` extra), alerts are also
sent to Sentry as warnings, and ``capture`` reports exceptions; events are redacted before they
leave the process.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from autoscaler import logs
from autoscaler.config import Settings
from autoscaler.durations import format_duration, parse_duration
from autoscaler.model import Reason, Status
from autoscaler.ports import ConfigError
from autoscaler.redact import redact, register_secret

if TYPE_CHECKING:
    from autoscaler.loop import TickReport

DEFAULT_AFTER = 600.0
REPEAT_AFTER = 3600.0  # one condition alerts at most once per this many seconds
BUDGET = 10  # messages per hour, all conditions together
_UNTRUSTED = (Status.MISSING, Status.STALE, Status.FAILED)


class DecisionLike(Protocol):
    @property
    def process(self) -> str: ...
    @property
    def reason(self) -> Reason: ...
    @property
    def status(self) -> Status: ...
    @property
    def current(self) -> int: ...


class TickLike(Protocol):
    """What alerts need from a tick (``loop.TickReport`` has it)."""

    @property
    def mono(self) -> float: ...
    @property
    def decisions(self) -> Sequence[DecisionLike]: ...
    @property
    def platform_error(self) -> str | None: ...
    @property
    def write_error(self) -> str | None: ...
    @property
    def writes(self) -> Mapping[str, int]: ...
    @property
    def is_leader(self) -> bool: ...
    @property
    def lock_error(self) -> str | None: ...


if TYPE_CHECKING:
    _REPORT_FITS: type[TickLike] = TickReport  # the loop's report is what alerts read


@dataclass
class _Condition:
    since: float | None = None  # when it started holding
    fired: bool = False  # an alert for this episode went out
    last_fired: float | None = None
    detail: str = ""


class Alerts:
    """Turns tick reports into alert messages. ``send`` gets each message's text."""

    def __init__(
        self,
        send: Callable[[str], None],
        after: float = DEFAULT_AFTER,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.send = send
        self.after = after
        self._clock = clock
        self._conditions: dict[str, _Condition] = {}
        self._was_leader = False
        self._tokens = float(BUDGET)
        self._refilled_at: float | None = None
        self.held_back = 0

    # -- input ----------------------------------------------------------------------------------

    def after_tick(self, report: TickLike) -> None:
        now = report.mono if self._clock is None else self._clock()
        if report.lock_error is not None:
            self._update("lock", True, now, f"the lock backend fails: {report.lock_error}")
        else:
            self._update("lock", False, now)
        if self._was_leader and not report.is_leader:
            why = report.lock_error or report.write_error or "another daemon holds it"
            self._emit(f"lost the leader lease ({why}); this daemon stopped writing", now)
        self._was_leader = report.is_leader
        if not report.is_leader:  # the leader alerts on these; a follower forgets its episodes
            for key, cond in self._conditions.items():
                if key != "lock":
                    cond.since, cond.fired = None, False
            return
        if report.platform_error is not None:
            self._update("platform", True, now, f"the platform fails: {report.platform_error}")
        elif report.write_error is not None and not report.writes:
            self._update("platform", True, now, f"writes fail: {report.write_error}")
        else:
            self._update("platform", False, now)
        for d in report.decisions:
            self._update(
                f"at_max:{d.process}",
                d.reason is Reason.AT_MAX,
                now,
                f"{d.process} is at its maximum ({d.current}) and the signal is still above the "
                "band: raise AUTOSCALER_" + d.process.upper().replace("-", "_") + "_MAX?",
            )
            self._update(
                f"not_ready:{d.process}",
                d.reason is Reason.NOT_READY,
                now,
                f"{d.process}: instances added long ago still do not serve, so the daemon stopped "
                "adding more: check the platform for crashing instances or a quota",
            )
            self._update(
                f"signal:{d.process}",
                d.status in _UNTRUSTED,
                now,
                f"{d.process}: the signal is {d.status.value}; the daemon holds and cannot scale "
                "down",
            )

    # -- state ----------------------------------------------------------------------------------

    def _update(self, key: str, active: bool, now: float, detail: str = "") -> None:
        cond = self._conditions.setdefault(key, _Condition())
        if not active:
            if cond.fired:
                self._emit(f"resolved: {cond.detail}", now)
            cond.since, cond.fired = None, False
            return
        cond.detail = detail
        if cond.since is None:
            cond.since = now
        if cond.fired or now - cond.since < self.after:
            return
        if cond.last_fired is not None and now - cond.last_fired < REPEAT_AFTER:
            return  # it alerted less than an hour ago: a flapping condition stays quiet
        cond.fired, cond.last_fired = True, now
        self._emit(f"{detail} (for {format_duration(now - cond.since)})", now)

    def _emit(self, text: str, now: float) -> None:
        if self._refilled_at is not None:
            self._tokens = min(BUDGET, self._tokens + (now - self._refilled_at) * BUDGET / 3600)
        self._refilled_at = now
        if self._tokens < 1:
            self.held_back += 1
            return
        self._tokens -= 1
        if self.held_back:
            text += f" ({self.held_back} earlier alerts held back by the rate limit)"
            self.held_back = 0
        self.send(redact("autoscaler: " + text))


class Webhook:
    """Posts ``{"text": ...}`` to a Slack-compatible webhook from a background thread."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=100)
        self._client = httpx.Client(timeout=timeout)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def __call__(self, text: str) -> None:
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            logs.get().warning("alert_dropped", reason="queue full")

    def _run(self) -> None:
        while (text := self._queue.get()) is not None:
            for attempt in range(2):
                try:
                    response = self._client.post(self.url, json={"text": text})
                    if response.status_code < 300:
                        break
                    error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if attempt == 0:
                    self._closing.wait(1.0)  # pause before the retry, not when shutting down
            else:
                logs.get().warning("alert_failed", error=redact(error))
            self._queue.task_done()
        self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued message has been tried."""
        self._queue.join()

    def close(self) -> None:
        """Deliver what is queued, for at most a few seconds (shutdown must stay quick)."""
        self._closing.set()  # no more pauses between retries
        with contextlib.suppress(queue.Full):  # a dead webhook with a full queue: give up
            self._queue.put(None, timeout=1.0)
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self._client.close()


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def init_sentry(dsn: str) -> Callable[[str], None] | None:
    """Start Sentry if ``sentry-sdk`` is installed; return a function that sends a warning."""
    try:
        import sentry_sdk  # an optional extra
    except ModuleNotFoundError:
        logs.get().warning("sentry_unavailable", detail="SENTRY_DSN is set: install 'sentry'")
        return None
    register_secret(dsn)
    sentry_sdk.init(
        dsn=dsn,
        before_send=lambda event, _hint: _scrub(event),
        send_default_pii=False,
        auto_enabling_integrations=False,  # ours is a small daemon: no framework hooks, fast start
    )

    def send(text: str) -> None:
        sentry_sdk.capture_message(text, level="warning")

    return send


class Notifier:
    """What the daemon holds: ``Alerts`` wired to the webhook and Sentry, with ``close``."""

    def __init__(self, alerts: Alerts, webhook: Webhook | None, sentry: bool) -> None:
        self.alerts = alerts
        self.webhook = webhook
        self.sentry = sentry

    def after_tick(self, report: TickLike) -> None:
        self.alerts.after_tick(report)

    def capture(self, exc: BaseException) -> None:
        """Report an unexpected exception to Sentry (when configured)."""
        if self.sentry:
            import sentry_sdk

            sentry_sdk.capture_exception(exc)

    def close(self) -> None:
        if self.webhook is not None:
            self.webhook.close()
        if self.sentry:
            import sentry_sdk

            sentry_sdk.flush(timeout=2.0)


def parse_after(env: Mapping[str, str]) -> float:
    raw = env.get("AUTOSCALER_ALERT_AFTER")
    if raw is None or not raw.strip():
        return DEFAULT_AFTER
    try:
        return parse_duration(raw, "s")
    except ValueError as exc:
        raise ConfigError({"AUTOSCALER_ALERT_AFTER": str(exc)}) from None


def build(settings: Settings, also: Callable[[str], None] | None = None) -> Notifier | None:
    """The notifier the configuration asks for, or ``None`` when no alert target is set.
    ``also`` gets every alert's text too (the history keeps them for the dashboard)."""
    url = settings.glob.notify_url
    dsn = (settings.env.get("SENTRY_DSN") or "").strip()
    after = parse_after(settings.env)
    if not url and not dsn and also is None:
        return None
    senders: list[Callable[[str], None]] = [also] if also is not None else []
    webhook = None
    if url:
        register_secret(url)  # a Slack webhook URL is a credential
        webhook = Webhook(url)
        senders.append(webhook)
    sentry = init_sentry(dsn) if dsn else None
    if sentry is not None:
        senders.append(sentry)

    def send(text: str) -> None:
        for sender in senders:
            sender(text)

    return Notifier(Alerts(send, after), webhook, sentry is not None)
