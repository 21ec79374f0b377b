"""A canary secret in every token variable, in the Redis and database URLs' passwords, in the
webhook URL, the Sentry DSN and an endpoint path; every command and its failure paths (platforms
that answer 401 quoting the request's headers, a Redis that refuses the password, a source
endpoint that echoes its URL, an unreachable webhook): the canary never appears in stdout,
stderr or the log. Scenario 46 (secrets redacted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from autoscaler import cli, redact
from tests.helpers import REDIS_URL_2

from .fake_platform import FakeFormationApi

pytestmark = pytest.mark.integration

CANARY = "cnry7Qx2Lm9Zp4Wv8Rt1"


class Leaky:
    """Answers every request with ``status`` and a body quoting its path and headers: the worst
    a misbehaving API could do with our credentials."""

    def __init__(self, status: int = 401) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                echo = f"bad credentials for {self.path} {dict(self.headers)} {body}"
                data = json.dumps(
                    {"id": "unauthorized", "message": echo, "errors": [{"message": echo}]}
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def leaky() -> Iterator[Leaky]:
    server = Leaky()
    yield server
    server.close()


def canary_env(api_url: str, platform: str) -> dict[str, str]:
    return {
        "AUTOSCALER_PLATFORM": platform,
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "http",
        "AUTOSCALER_WORKER_URL": f"{api_url}/hirefire/{CANARY}/info",
        "AUTOSCALER_WORKER_HTTP_TOKEN": CANARY + "h",
        "HEROKU_API_TOKEN": CANARY + "a",
        "HEROKU_APP_NAME": "my-app",
        "HEROKU_API_URL": api_url,
        "RENDER_API_KEY": CANARY + "b",
        "RENDER_API_URL": api_url,
        "AUTOSCALER_WEB_RENDER_SERVICE_ID": "srv-abcdef123",
        "AUTOSCALER_WORKER_RENDER_SERVICE_ID": "srv-abcdef456",
        "FLY_API_TOKEN": CANARY + "c",
        "FLY_APP_NAME": "my-app",
        "FLY_API_URL": api_url,
        "RAILWAY_API_TOKEN": CANARY + "d",
        "RAILWAY_ENVIRONMENT_ID": "11111111-2222-3333-4444-555555555555",
        "RAILWAY_API_URL": api_url + "/graphql/v2",
        "AUTOSCALER_WEB_RAILWAY_SERVICE_ID": "11111111-2222-3333-4444-666666666666",
        "AUTOSCALER_WORKER_RAILWAY_SERVICE_ID": "11111111-2222-3333-4444-777777777777",
        "REDIS_URL": f"redis://default:{CANARY}e@127.0.0.1:6379/9",  # db 9 is ours
        "DATABASE_URL": f"postgresql://postgres:{CANARY}f@127.0.0.1:5432/test",
        "AUTOSCALER_NOTIFY_URL": f"http://127.0.0.1:1/services/T0/B0/{CANARY}g",
        "SENTRY_DSN": f"http://{CANARY}i@127.0.0.1:1/1",
        "AUTOSCALER_LOG_LEVEL": "debug",
    }


def run(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """One command in this process, from a clean slate: no secret registered yet."""
    with monkeypatch.context() as m:
        for name, value in env.items():
            m.setenv(name, value)
        m.setattr(redact, "_secrets", set())
        code = cli.main(args)
    out, err = capsys.readouterr()
    return f"exit {code}\n{out}\n{err}"


def assert_no_canary(output: str) -> None:
    assert CANARY not in output, output
    assert CANARY[:12] not in output, output  # not even a truncated piece


COMMANDS = [["check"], ["sample", "--json"], ["explain"], ["once"]]


def run_all(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> list[str]:
    return [run(cmd, env, monkeypatch, capsys) for cmd in COMMANDS]


@pytest.fixture(autouse=True)
def clean_redis_db_9() -> Iterator[None]:
    yield  # the commands took the lock in database 9 (REDIS_URL above)
    client = redis.Redis.from_url(REDIS_URL_2)
    client.flushdb()
    client.close()


@pytest.mark.parametrize("platform", ["heroku", "render", "fly", "railway"])
def test_no_command_prints_a_secret_when_everything_fails(
    platform: str, leaky: Leaky, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    env = canary_env(leaky.url, platform)
    outputs = run_all(env, monkeypatch, capsys)
    for output in outputs:
        assert_no_canary(output)
    # the failure paths were taken: each command fails cleanly (2 config, 3 dependency), never
    # with an unexpected error (1) or a success (0)
    assert all(o.startswith(("exit 2", "exit 3")) for o in outputs), outputs
    assert any("[REDACTED]" in o or "401" in o for o in outputs), outputs


def test_no_secret_while_the_daemon_scales_and_alerts(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    api = FakeFormationApi(lambda: (None, False), process="worker")
    try:
        env = {
            # web is not managed here: its variables would be refused (strict config)
            **{k: v for k, v in canary_env(api.url, "heroku").items() if "_WEB_" not in k},
            "AUTOSCALER_PROCESSES": "worker",
            "AUTOSCALER_WORKER_URL": f"{api.url}/signal/{CANARY}",
            "AUTOSCALER_LOCK": "postgres",
            "AUTOSCALER_LOCK_SCHEMA": "t_lock_canary",
            "AUTOSCALER_LOCK_NAME": "t_lock_canary",
            "AUTOSCALER_ALERT_AFTER": "0s",
            "AUTOSCALER_INTERVAL": "1s",
            "AUTOSCALER_LOG_FORMAT": "json",
        }
        outputs = run_all(env, monkeypatch, capsys)
        log = tmp_path / "run.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "autoscaler", "run"],
                env={**os.environ, **env},
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            before, deadline = len(api.writes()), time.monotonic() + 30
            while len(api.writes()) <= before and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.5)  # a few more ticks, with alerts
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        outputs.append(log.read_text())
    finally:
        api.close()
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
            c.execute("DROP SCHEMA IF EXISTS t_lock_canary CASCADE")
    for output in outputs:
        assert_no_canary(output)
    assert len(api.writes()) > before, "the daemon was meant to scale (the happy path)"
    assert '"outcome": "written"' in outputs[-1]  # the write's decision line
