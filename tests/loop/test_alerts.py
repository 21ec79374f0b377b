"""Alerts: conditions that last, lock loss, rate limits, redaction, the webhook, Sentry."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.alerts import REPEAT_FLOOR, Alerts, Webhook, build, cause_of
from autoscaler.config import load
from autoscaler.loop import TickReport
from autoscaler.model import Action, Decision, Reason, Status
from autoscaler.ports import ConfigError
from autoscaler.redact import register_secret

CANARY = "canary-0f1e2d3c4b5a69788796a5b4"


def decision(process: str = "web", reason: Reason = Reason.IN_BAND, status: Status = Status.OK):
    return Decision(process, Action.HOLD, 10, 10, reason, 100.0, status, 1, 10)


def report(mono: float, *decisions: Decision, **kw: object) -> TickReport:
    r = TickReport(wall=1_767_225_600.0 + mono, mono=mono, decisions=list(decisions))
    for k, v in kw.items():
        setattr(r, k, v)
    return r


class Run:
    """Feeds one report per ``step`` seconds to an ``Alerts`` and keeps what it sent."""

    def __init__(self, after: float = 600.0) -> None:
        self.sent: list[str] = []
        self.alerts = Alerts(self.sent.append, after=after)
        self.mono = 0.0

    def ticks(self, seconds: float, step: float = 5.0, **kw: object) -> None:
        end = self.mono + seconds
        while self.mono < end:
            decisions = kw.get("decisions", ())
            extra = {k: v for k, v in kw.items() if k != "decisions"}
            self.alerts.after_tick(report(self.mono, *decisions, **extra))  # type: ignore[arg-type]
            self.mono += step


def test_at_max_alerts_after_the_delay_once_and_resolves() -> None:
    run = Run(after=600)
    run.ticks(595, decisions=[decision(reason=Reason.AT_MAX)])
    assert run.sent == []
    run.ticks(300, decisions=[decision(reason=Reason.AT_MAX)])
    assert len(run.sent) == 1 and "web is at its maximum (10)" in run.sent[0]
    assert "AUTOSCALER_WEB_MAX" in run.sent[0]
    run.ticks(10, decisions=[decision(reason=Reason.IN_BAND)])
    assert len(run.sent) == 2 and run.sent[1].startswith("autoscaler: resolved: web is at")


@pytest.mark.parametrize("status", [Status.MISSING, Status.STALE, Status.FAILED])
def test_a_missing_stale_or_failing_signal_alerts_after_the_delay(status: Status) -> None:
    run = Run(after=300)
    run.ticks(295, decisions=[decision(status=status, reason=Reason.SIGNAL_MISSING)])
    assert run.sent == []
    run.ticks(10, decisions=[decision(status=status, reason=Reason.SIGNAL_MISSING)])
    assert len(run.sent) == 1 and f"the signal is {status.value}" in run.sent[0]


def test_platform_errors_alert_when_they_persist_not_when_they_blip() -> None:
    run = Run(after=120)
    for _ in range(10):  # one failed read every minute: never two minutes in a row
        run.ticks(5, platform_error="HTTP 503")
        run.ticks(55)
    assert run.sent == []
    run.ticks(125, platform_error="HTTP 503")
    assert len(run.sent) == 1 and "the platform fails (server errors): HTTP 503" in run.sent[0]


def test_failing_writes_alert_and_a_successful_write_resolves() -> None:
    run = Run(after=60)
    run.ticks(65, write_error="rejected (needs operator action): tier limit")
    assert len(run.sent) == 1 and "writes fail (rejected)" in run.sent[0]
    run.ticks(5, writes={"web": 3})
    assert "resolved" in run.sent[-1]


def test_losing_the_lease_alerts_at_once() -> None:
    run = Run()
    run.ticks(30, is_leader=True)
    run.ticks(5, is_leader=False, lock_error="LockUnavailable: connection refused")
    assert len(run.sent) == 1
    assert "lost the leader lease (LockUnavailable: connection refused)" in run.sent[0]


def test_an_unreachable_lock_backend_alerts_even_on_a_follower() -> None:
    run = Run(after=60)
    run.ticks(70, is_leader=False, lock_error="LockUnavailable: timeout")
    assert len(run.sent) == 1 and "the lock backend fails" in run.sent[0]


def test_a_follower_does_not_repeat_the_leaders_alerts() -> None:
    run = Run(after=60)
    run.ticks(
        600,
        is_leader=False,
        platform_error="HTTP 500",
        decisions=[decision(reason=Reason.AT_MAX, status=Status.FAILED)],
    )
    assert run.sent == []


def test_a_flapping_condition_alerts_at_most_once_per_floor() -> None:
    run = Run(after=60)
    for _ in range(5 * 30):  # five hours of: 70 s missing, 50 s fine
        run.ticks(70, decisions=[decision(status=Status.MISSING)])
        run.ticks(50, decisions=[decision(status=Status.OK)])
    firing = [m for m in run.sent if "resolved" not in m]
    assert 5 <= len(firing) <= 5 * 3600 / REPEAT_FLOOR  # once per 15 minutes at most
    assert len(run.sent) <= 2 * len(firing)


def test_a_short_rate_limit_episode_does_not_hide_the_outage_that_follows() -> None:
    """Issue 14 item 14: a 28 s 429 episode, resolved, then a 120 s outage five minutes later."""
    run = Run(after=20)
    run.ticks(30, platform_error="heroku: GET /apps/a/formation: rate limited by the platform")
    assert len(run.sent) == 1 and "(rate limited)" in run.sent[0]
    run.ticks(300)
    assert run.sent[-1].startswith("autoscaler: resolved: the platform fails (rate limited)")
    run.ticks(120, platform_error="heroku: GET /apps/a/formation: cannot connect (refused)")
    outage = [m for m in run.sent if "(unreachable)" in m and "resolved" not in m]
    assert len(outage) == 1
    run.ticks(10)
    assert run.sent[-1].startswith("autoscaler: resolved: the platform fails (unreachable)")


def test_a_new_episode_of_the_same_cause_alerts_again_after_the_floor() -> None:
    run = Run(after=60)
    run.ticks(70, write_error="rate limited, retrying in 30s: 429")
    run.ticks(10, writes={"web": 3})
    assert len(run.sent) == 2  # alert, resolved
    run.ticks(70, write_error="rate limited, retrying in 30s: 429")
    assert len(run.sent) == 2  # within the floor of the last alert: quiet
    run.ticks(REPEAT_FLOOR, writes={"web": 4})
    run.ticks(70, write_error="rate limited, retrying in 30s: 429")
    assert len([m for m in run.sent if m.startswith("autoscaler: writes fail")]) == 2


def test_causes_are_told_apart_from_the_error_text() -> None:
    assert cause_of("heroku: PATCH ...: 429 Too Many Requests") == "rate limited"
    assert cause_of("render: reading the service srv-1 (web): 401 unauthorized") == (
        "refused access"
    )
    assert cause_of("fly: GET /machines: timed out after the request was sent") == "unreachable"
    assert cause_of("railway: 502 Bad Gateway") == "server errors"
    assert cause_of("the platform reported no 'web' process") == "other errors"
    assert cause_of("rejected (needs operator action): tier limit", write=True) == "rejected"
    assert cause_of("outcome unknown: fly: ... 503", write=True) == "outcome unknown"


def test_many_conditions_at_once_stay_within_ten_messages_an_hour() -> None:
    run = Run(after=60)
    many = [decision(f"p{i}", Reason.AT_MAX, Status.STALE) for i in range(30)]
    run.ticks(3600, decisions=many, platform_error="HTTP 500")
    assert len(run.sent) == 10
    run.ticks(600, decisions=[decision("p0", status=Status.OK)])
    assert "held back by the rate limit" in run.sent[10]


def test_messages_are_redacted() -> None:
    register_secret(CANARY)
    run = Run(after=0)
    run.ticks(5, platform_error=f"401 for token {CANARY}")
    assert run.sent and all(CANARY not in m for m in run.sent)


class Hook:
    """A local Slack-compatible webhook that records bodies; ``fail`` first answers 500."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict[str, str]] = []
        self.fail = fail
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.fail > 0:
                    hook.fail -= 1
                    self.send_response(500)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/{CANARY}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook(fail=1)
    yield h
    h.close()


def test_the_webhook_posts_slack_json_and_retries_once(hook: Hook) -> None:
    webhook = Webhook(hook.url)
    try:
        webhook("autoscaler: web is at its maximum")
        webhook.flush()
    finally:
        webhook.close()
    assert hook.bodies == [{"text": "autoscaler: web is at its maximum"}]


def test_an_unreachable_webhook_never_raises_into_the_tick() -> None:
    webhook = Webhook("http://127.0.0.1:1/hook", timeout=0.5)
    try:
        webhook("hello")
        webhook.flush()
    finally:
        webhook.close()


def test_a_dead_webhook_with_a_full_queue_never_holds_up_shutdown() -> None:
    webhook = Webhook("http://127.0.0.1:1/hook", timeout=0.2)
    for i in range(150):  # more than the queue holds: the rest are dropped, not blocking
        webhook(f"message {i}")
    closer = threading.Thread(target=webhook.close)
    closer.start()
    closer.join(15)
    assert not closer.is_alive()


def test_build_wires_the_notify_url_and_hides_it(hook: Hook) -> None:
    notifier = build(load({"AUTOSCALER_NOTIFY_URL": hook.url, "AUTOSCALER_ALERT_AFTER": "1m"}))
    assert notifier is not None and notifier.alerts.after == 60
    try:
        notifier.after_tick(report(0.0, is_leader=True))
        notifier.after_tick(report(5.0, is_leader=False, lock_error=f"at {hook.url}"))
        assert notifier.webhook is not None
        notifier.webhook.flush()
    finally:
        notifier.close()
    assert len(hook.bodies) == 1 and "lost the leader lease" in hook.bodies[0]["text"]
    assert CANARY not in hook.bodies[0]["text"]


def test_no_target_means_no_notifier_and_a_bad_delay_is_a_config_error() -> None:
    assert build(load({})) is None
    with pytest.raises(ConfigError) as err:
        build(load({"AUTOSCALER_NOTIFY_URL": "https://x.test/h", "AUTOSCALER_ALERT_AFTER": "x"}))
    assert set(err.value.problems) == {"AUTOSCALER_ALERT_AFTER"}


def test_sentry_gets_the_alert_redacted() -> None:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    # in a child process: sentry_sdk.init is process-wide state
    script = textwrap.dedent(
        f"""
        from autoscaler.alerts import build
        from autoscaler.config import load
        from autoscaler.loop import TickReport
        from autoscaler.redact import register_secret
        register_secret({CANARY!r})
        n = build(load({{"SENTRY_DSN": {dsn!r}, "AUTOSCALER_ALERT_AFTER": "0s"}}))
        n.after_tick(TickReport(0.0, 0.0, platform_error="bad token {CANARY}"))
        n.capture(RuntimeError("boom {CANARY}"))
        n.close()
        """
    )
    try:
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    body = b"".join(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b for b in received)
    assert b"the platform fails (other errors): bad token" in body and b"boom" in body
    assert CANARY.encode() not in body


tick_reports = st.lists(
    st.tuples(
        st.floats(1, 120),  # seconds since the previous tick
        st.booleans(),  # leader
        st.sampled_from([None, "HTTP 503"]),
        st.sampled_from([None, "LockUnavailable: refused"]),
        st.lists(
            st.tuples(
                st.sampled_from(["web", "worker"]),
                st.sampled_from(list(Reason)),
                st.sampled_from(list(Status)),
            ),
            max_size=2,
        ),
    ),
    max_size=400,
)


@settings(max_examples=100, deadline=None)
@given(tick_reports)
def test_whatever_happens_no_window_of_an_hour_gets_more_than_twenty_messages(
    ticks: list[tuple[float, bool, str | None, str | None, list[tuple[str, Reason, Status]]]],
) -> None:
    sent: list[float] = []
    mono = 0.0
    alerts = Alerts(lambda _text: sent.append(mono), after=60)
    for gap, leader, platform_error, lock_error, decided in ticks:
        mono += gap
        decisions = [decision(p, reason, status) for p, reason, status in decided]
        alerts.after_tick(
            report(
                mono,
                *decisions,
                is_leader=leader,
                platform_error=platform_error,
                lock_error=lock_error,
            )
        )
    # a full bucket (10) plus what refills in an hour (10)
    assert all(sum(1 for u in sent if t <= u < t + 3600) <= 20 for t in sent)
