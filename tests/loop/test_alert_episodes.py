"""A real ``autoscaler run`` against a fake Heroku over loopback, with alerts to a local webhook:
a short episode of server errors alerts and resolves, and the outage that follows alerts again
(issue 14 item 14: alerts are keyed by cause, and one episode no longer silences the next for an
hour). Heroku's reads ride out a 429 on the formation they cached, so the first episode is 503s;
``test_alerts.py`` plays the 429-then-outage sequence of the issue through ``Alerts`` itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.platforms.conftest import HEROKU_TOKEN, heroku_env
from tests.platforms.fake_heroku import FakeHeroku
from tests.sources.http.hirefire import Answer, FakeHireFire, url_of

pytestmark = pytest.mark.integration


class Hook:
    """A Slack-shaped webhook on 127.0.0.1 that keeps every text it gets."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        hook = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.texts.append(json.loads(body)["text"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def firing(hook: Hook) -> int:
    return sum(1 for t in hook.texts if "the platform fails" in t and "resolved" not in t)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def signal_server() -> Iterator[FakeHireFire]:
    with FakeHireFire(Answer(body=b'[{"name": "worker", "value": 0}]')) as srv:
        yield srv


def test_an_episode_of_errors_then_an_outage_alert_twice(
    signal_server: FakeHireFire, tmp_path: Path
) -> None:
    heroku = FakeHeroku(token=HEROKU_TOKEN, formation={"worker": 1}).start()
    hook = Hook()
    env = heroku_env(
        heroku.url,
        AUTOSCALER_PROCESSES="worker",
        AUTOSCALER_WORKER_SOURCE="http",
        AUTOSCALER_WORKER_URL=url_of(signal_server),
        AUTOSCALER_WORKER_MIN="1",
        AUTOSCALER_WORKER_MAX="2",
        AUTOSCALER_INTERVAL="1s",
        AUTOSCALER_LOCK="none",
        AUTOSCALER_ALERT_AFTER="2s",
        AUTOSCALER_NOTIFY_URL=hook.url,
        AUTOSCALER_LOG_FORMAT="json",
    )
    log = (tmp_path / "daemon.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscaler", "run"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: len(heroku.calls("GET")) >= 2, 20, "the daemon to read")
        heroku.fail(503, method="GET", times=10_000)
        wait_for(lambda: firing(hook) == 1, 20, "the alert for the 503s")
        with heroku.lock:
            heroku._faults.clear()  # the episode ends
        wait_for(lambda: any(t.startswith("autoscaler: resolved") for t in hook.texts), 20,
                 "the resolve")  # fmt: skip
        heroku.drop(times=10_000)  # then an outage: every connection cut without an answer
        wait_for(lambda: firing(hook) == 2, 20, "the alert for the outage")
        alerts = [t for t in hook.texts if "resolved" not in t]
        assert [("server errors" in t, "unreachable" in t) for t in alerts] == [
            (True, False),
            (False, True),
        ], hook.texts
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
            hook.close()
            heroku.stop()
