"""Alerts to a Slack-compatible incoming webhook (``AUTOSCALER_NOTIFY_URL``), and to Sentry.

Conditions, each per process where it applies, checked after every tick:

- ``at_max``: the signal stays above the band while the process is at its maximum;
- ``signal``: the signal is missing, stale or failing (so the daemon cannot scale down);
- ``platform``: reading the formation fails, or writes keep failing;
- ``lock``: the lock backend is unreachable, so no daemon may write.

Conditions are keyed by their cause: a failing platform is "rate limited", "refused access",
"unreachable", "server errors", "rejected"... (told apart from the error's text), reads and
writes apart, and a failing signal by its status. A condition alerts once it has held for
``AUTOSCALER_ALERT_AFTER`` (default 10 minutes), and says "resolved" when it clears (for the
platform: when a tick reads, or writes, without error). A new episode after a resolve alerts
again, so a short 429 episode never hides the outage that follows; one cause alerts at most once
per ``REPEAT_FLOOR`` (15 minutes), so a flapping condition cannot flood a channel. Losing the
lease while leader alerts at once. Only the leader sends the per-process alerts, so two daemons
do not double them.

At most 10 messages go out per hour in all (the next message then says how many were held
back). Messages are sent by a background thread and never delay a tick; every
message passes through ``redact``.

With ``SENTRY_DSN`` set and ``sentry-sdk`` installed (the ``sentry`` extra), alerts are also
sent to Sentry as warnings, and ``capture`` reports exceptions; events are redacted before they
leave the process.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from autoscaler import logs
from autoscaler.config import GlobalSettings, Settings
from autoscaler.configkit import read
from autoscaler.durations import format_duration
from autoscaler.model import Reason, Status
from autoscaler.redact import redact, register_secret

if TYPE_CHECKING:
    from autoscaler.loop import TickReport

DEFAULT_AFTER = 600.0
REPEAT_FLOOR = 900.0  # one cause alerts at most once per this many seconds (against flapping)
BUDGET = 10  # messages per hour, all conditions together
_UNTRUSTED = (Status.MISSING, Status.STALE, Status.FAILED)
#: the loop's own words for a write that was not made, and the cause each names
_WRITE_CAUSES = (
    ("rate limited", "rate limited"),
    ("rejected (needs operator action)", "rejected"),
    ("rejected (will retry)", "refused for now"),
    ("outcome unknown", "outcome unknown"),
    ("not sent, the formation changed", "formation changed meanwhile"),
    ("the lease is no longer valid", "lease lost"),
)
#: causes read from a platform error's text, the first that matches
_TEXT_CAUSES = (
    (re.compile(r"rate.?limit|\b429\b", re.I), "rate limited"),
    (re.compile(r"\b40[13]\b|unauthori[sz]ed|forbidden|invalid token|api key", re.I),
     "refused access"),
    (re.compile(r"cannot connect|connect(ion)? (refused|error|reset)|timed out|timeout|"
                r"cut off|unreachable|name resolution|network", re.I), "unreachable"),
    (re.compile(r"\b5\d\d\b"), "server errors"),
)  # fmt: skip


def cause_of(error: str, *, write: bool = False) -> str:
    """A short name for what an error is about, so that alerts are keyed by cause."""
    if write:
        for prefix, cause in _WRITE_CAUSES:
            if error.startswith(prefix):
                return cause
        if "not sent: the platform refused this change" in error:
            return "rejected"  # the same refusal, held back (not re-sent) by the loop
    for pattern, cause in _TEXT_CAUSES:
        if pattern.search(error):
            return cause
    return "other errors"


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
            self._cause("lock", cause_of(report.lock_error), now,
                        f"the lock backend fails: {report.lock_error}")  # fmt: skip
        else:
            self._cause("lock", None, now)
        if self._was_leader and not report.is_leader:
            why = report.lock_error or report.write_error or "another daemon holds it"
            self._emit(f"lost the leader lease ({why}); this daemon stopped writing", now)
        self._was_leader = report.is_leader
        if not report.is_leader:  # the leader alerts on these; a follower forgets its episodes
            for key, cond in self._conditions.items():
                if not key.startswith("lock|"):
                    cond.since, cond.fired = None, False
            return
        if report.platform_error is not None:
            cause = cause_of(report.platform_error)
            self._cause("read", cause, now,
                        f"the platform fails ({cause}): {report.platform_error}")  # fmt: skip
        else:
            self._cause("read", None, now)
        if report.write_error is not None and not report.writes:
            cause = cause_of(report.write_error, write=True)
            self._cause("write", cause, now, f"writes fail ({cause}): {report.write_error}")
        elif report.writes or report.platform_error is None:
            self._cause("write", None, now)
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
            self._cause(
                f"signal:{d.process}",
                d.status.value if d.status in _UNTRUSTED else None,
                now,
                f"{d.process}: the signal is {d.status.value}; the daemon holds and cannot scale "
                "down",
            )

    # -- state ----------------------------------------------------------------------------------

    def _cause(self, family: str, cause: str | None, now: float, detail: str = "") -> None:
        """``family`` (reads, writes, the lock, a process's signal) fails for ``cause``, or is
        fine (``None``): each cause is a condition of its own, and all resolve together when
        the family is fine again. A cause that gives way to another while the family still
        fails keeps its episode (it has not been shown fixed)."""
        if cause is None:
            for key in [k for k in self._conditions if k.startswith(family + "|")]:
                self._update(key, False, now)
            return
        self._update(f"{family}|{cause}", True, now, detail)

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
        if cond.last_fired is not None and now - cond.last_fired < REPEAT_FLOOR:
            return  # this cause alerted a moment ago: a flapping condition stays quiet
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
    """``AUTOSCALER_ALERT_AFTER`` alone, checked as ``load`` checks it; raises ``ConfigError``."""
    only = {k: v for k, v in env.items() if k == "AUTOSCALER_ALERT_AFTER"}
    return float(read(GlobalSettings, only).alert_after)


def build(settings: Settings, also: Callable[[str], None] | None = None) -> Notifier | None:
    """The notifier the configuration asks for, or ``None`` when no alert target is set.
    ``also`` gets every alert's text too (the history keeps them for the dashboard)."""
    url = settings.glob.notify_url
    dsn = settings.glob.sentry_dsn or ""
    after = float(settings.glob.alert_after)
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
