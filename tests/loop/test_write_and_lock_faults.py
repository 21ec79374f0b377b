"""Faults on loopback, bounded in time: a platform that refuses every write for good (a real
daemon process against a fake Heroku API answering 422), and a lock backend that accepts
connections and never answers (issue 14 items 9 and 13)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.locks.redis import RedisLock, RedisLockConfig
from autoscaler.loop import Autoscaler
from autoscaler.testing import FakePlatform, FakeSource
from tests.e2e.fake_platform import FakeFormationApi


@pytest.mark.integration
def test_a_daemon_facing_a_422_sends_the_refused_write_once(tmp_path: Path) -> None:
    api = FakeFormationApi(lambda: (None, False), period=1e12, high=60.0)  # latency always high
    api.refuse = "Your account has reached its concurrent dyno limit."
    env = {
        "AUTOSCALER_PLATFORM": "heroku",
        "HEROKU_API_TOKEN": "token-0123456789",
        "HEROKU_APP_NAME": "my-app",
        "HEROKU_API_URL": api.url,
        "AUTOSCALER_PROCESSES": "worker",
        "AUTOSCALER_WORKER_SOURCE": "http",
        "AUTOSCALER_WORKER_URL": api.url + "/signal",
        "AUTOSCALER_WORKER_MAX": "4",
        "AUTOSCALER_WORKER_UP_COOLDOWN": "0s",
        "AUTOSCALER_INTERVAL": "1s",
        "AUTOSCALER_LOCK": "none",
        "AUTOSCALER_LOG_FORMAT": "json",
    }
    log = tmp_path / "run.log"
    try:
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "autoscaler", "run"],
                env={**os.environ, **env},
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 30
                while not api.refused and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert api.refused, log.read_text()
                reads = len(api.reads)
                while len(api.reads) < reads + 6 and time.monotonic() < deadline:
                    time.sleep(0.1)  # six more ticks, the signal above the band on each
            finally:
                proc.terminate()
                proc.wait(15)
    finally:
        api.close()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert len(api.reads) >= reads + 6
    assert len(api.refused) == 1  # today's code sends it on every tick
    failed = [e["error"] for e in events if e.get("event") == "write_failed"]
    assert "concurrent dyno limit" in failed[0] and "not sent again" in failed[0]


class Silent:
    """A TCP server on loopback that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


class Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def test_a_lock_backend_that_never_answers_costs_a_tick_half_its_timeout() -> None:
    silent = Silent()
    env = {
        "AUTOSCALER_PLATFORM": "heroku",
        "HEROKU_API_TOKEN": "never-used",
        "HEROKU_APP_NAME": "app",
        "AUTOSCALER_PROCESSES": "web",
        "AUTOSCALER_INTERVAL": "2s",
        "AUTOSCALER_TICK_TIMEOUT": "1s",
    }
    # the lock's own socket timeout is 2 s, and the client may retry: alone it holds a tick
    # for 2 s or more; the loop gives each lock call half the tick timeout
    lock = RedisLock(RedisLockConfig(f"redis://127.0.0.1:{silent.port}/0", "t_silent", 15.0))
    platform = FakePlatform({"web": 2})
    platform.writes_forbidden = True
    scaler = Autoscaler(
        load(env), platform, {"web": FakeSource(5000.0)}, FakeClock(), lock=lock, log=Quiet()
    )
    try:
        for _ in range(3):
            started = time.monotonic()
            report = scaler.tick()
            took = time.monotonic() - started
            assert not report.is_leader and report.lock_error
            assert took < 1.5, took  # bounded by the loop, not by the lock's 2 s socket timeout
        assert "no answer" in report.lock_error
    finally:
        silent.close()
        scaler.close()
