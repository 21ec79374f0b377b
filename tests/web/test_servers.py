"""End to end: real apps under real servers, a real HTTP client, real Redis, and the daemon's
``autoscaler sample --json`` reporting the web signal."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from autoscaler import cli

from .conftest import REDIS_URL, slots, totals

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVERS = {
    # gunicorn sync with --preload: the app (and its recorder) is built before the fork
    "sync": [
        str(BIN / "gunicorn"),
        "-k",
        "sync",
        "-w",
        "2",
        "--preload",
        "tests.web.apps:flask_app",
    ],
    "gthread": [
        str(BIN / "gunicorn"),
        *("-k", "gthread", "-w", "2", "--threads", "4", "tests.web.apps:flask_app"),
    ],
    "uvicorn": [str(BIN / "uvicorn"), "tests.web.apps:fastapi_app", "--no-access-log"],
}
# queue times the client stamps into X-Request-Start, cycling through every header form
OFFSETS_MS = [15.0 + (i * 37) % 290 for i in range(120)]
FORMS = [
    lambda ms: f"{ms:.0f}",  # Heroku, Railway: integer ms
    lambda ms: f"t={ms / 1000:.3f}",  # nginx: t=seconds.fraction
    lambda ms: f"t={ms * 1000:.0f}",  # Apache: t=µs
    lambda ms: f"{ms * 1_000_000:.0f}",  # Render: ns
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(kind: str, port: int, process: str, redis_url: str) -> subprocess.Popen[bytes]:
    bind = ["-b", f"127.0.0.1:{port}"] if kind != "uvicorn" else ["--port", str(port)]
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "AUTOSCALER_PROCESS": process,
        "AUTOSCALER_FLUSH_INTERVAL": "1s",
        "PYTHONPATH": str(ROOT),
    }
    # a file, not a pipe: a chatty server can never block on it; it lives as long as the server
    log = tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(
        [*SERVERS[kind], *bind],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    _stop(proc)
    log.seek(0)
    raise AssertionError(f"{kind} did not start: {log.read().decode(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _hit(client: httpx.Client, port: int, offsets: list[float]) -> list[int]:
    return [status for status, _ in _timed_hits(client, port, offsets)]


def _timed_hits(client: httpx.Client, port: int, offsets: list[float]) -> list[tuple[int, float]]:
    """Send one request per offset, stamped ``offset`` ms in the past; return each status and
    the most the request can have waited: the offset plus the time until its response. (On a
    busy machine the server may take a few ms to pick a request up: that is real queueing.)"""
    out = []
    for i, offset in enumerate(offsets):
        sent = time.time() * 1000
        stamp = FORMS[i % len(FORMS)](sent - offset)
        body = b"x" * 64 if i % 3 == 0 else None  # small bodies count; only big ones are skipped
        r = client.post(
            f"http://127.0.0.1:{port}/", content=body, headers={"X-Request-Start": stamp}
        )
        out.append((r.status_code, offset + time.time() * 1000 - sent))
    return out


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _sample_json(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    process: str,
    aggregate: str,
) -> dict[str, object]:
    p = process.upper()
    monkeypatch.setenv(f"AUTOSCALER_{p}_AGGREGATE", aggregate)
    assert cli.main(["sample", "--json"]) == 0
    out: dict[str, dict[str, object]] = json.loads(capsys.readouterr().out)["processes"]
    return out[process]


def _wait_for(read: Callable[[], dict[str, int]], n: int) -> dict[str, int]:
    """Poll until samples delivered plus samples reported lost reach ``n`` (or 15 s pass)."""
    deadline = time.monotonic() + 15
    while True:
        got = read()
        if got.get("lost", 0) + got["n"] >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _wait_for_samples(db: redis.Redis, process: str, n: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        got = totals(db, process)["n"]
        if got >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"only {got} of {n} samples reached Redis")


@pytest.mark.parametrize("kind", list(SERVERS))
def test_the_daemon_reports_p50_and_p95_within_10ms_of_the_truth(
    kind: str,
    redis_db: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    process = f"it{kind}"
    port = _free_port()
    proc = _serve(kind, port, process, REDIS_URL)
    try:
        with httpx.Client() as client:
            hits = _timed_hits(client, port, OFFSETS_MS)
        _wait_for_samples(redis_db, process, len(OFFSETS_MS))
    finally:
        _stop(proc)
    assert {status for status, _ in hits} == {200}
    most = [upper for _, upper in hits]

    monkeypatch.chdir(tmp_path)  # no stray .env
    for var in [k for k in os.environ if k.startswith("AUTOSCALER_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AUTOSCALER_PLATFORM", "heroku")
    monkeypatch.setenv("HEROKU_API_TOKEN", "not-used-by-sample")  # load checks the platform's
    monkeypatch.setenv("HEROKU_APP_NAME", "demo")
    monkeypatch.setenv("AUTOSCALER_PROCESSES", process)
    monkeypatch.setenv(f"AUTOSCALER_{process.upper()}_SOURCE", "request_queue_time")
    monkeypatch.setenv(f"AUTOSCALER_{process.upper()}_WINDOW", "60s")
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    for aggregate, q in (("p50", 0.5), ("p95", 0.95)):
        item = _sample_json(monkeypatch, capsys, process, aggregate)
        # the truth lies between the stamped offsets and the offsets plus the round trips
        low, high = _nearest_rank(OFFSETS_MS, q), _nearest_rank(most, q)
        assert item["ok"] is True and item["metric"] == "request_queue_time"
        assert item["samples"] == len(OFFSETS_MS)
        assert isinstance(item["value_ms"], float)
        assert low - 10.0 <= item["value_ms"] <= high + 10.0, (aggregate, item, low, high)


@pytest.mark.parametrize("kind", ["gthread", "uvicorn"])
def test_requests_keep_succeeding_while_redis_is_down_and_lost_samples_are_counted(
    kind: str, tmp_path: Path
) -> None:
    redis_server = shutil.which("redis-server")
    assert redis_server, "redis-server is needed to stop a private Redis mid-test"
    rport, port = _free_port(), _free_port()

    def start_redis() -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [
                redis_server,
                "--port",
                str(rport),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        db = redis.Redis(port=rport)
        for _ in range(100):
            try:
                db.ping()
                return p
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    private = start_redis()
    url = f"redis://127.0.0.1:{rport}/0"
    proc = _serve(kind, port, "outage", url)
    try:
        with httpx.Client() as client:
            assert set(_hit(client, port, [50.0] * 10)) == {200}
            _wait_for_samples(redis.Redis(port=rport), "outage", 10)
            _stop(private)  # Redis goes away
            statuses = _hit(client, port, [50.0] * 30)
            time.sleep(2.5)  # at least one flush fails
            statuses += _hit(client, port, [50.0] * 10)
            private = start_redis()  # back, empty
            after = _wait_for(lambda: totals(redis.Redis(port=rport), "outage"), 40)
    finally:
        _stop(proc)
        _stop(private)
    assert statuses == [200] * 40
    assert after.get("lost", 0) > 0  # the outage is visible, not silent
    assert after["lost"] + after["n"] == 40


@pytest.mark.parametrize("kind", ["gthread", "uvicorn"])
def test_busy_time_is_the_time_requests_spent_in_the_app(kind: str, redis_db: redis.Redis) -> None:
    """Eight requests of 0.2 s at once: the busy seconds published are at least the 1.6 s the
    app slept and at most the time the client waited for them (plus the start-up probes)."""
    process = f"busy{kind}"
    port = _free_port()
    proc = _serve(kind, port, process, REDIS_URL)

    def one(_: int) -> float:
        sent = time.monotonic()
        assert httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10).status_code == 200
        return time.monotonic() - sent

    try:
        with ThreadPoolExecutor(8) as pool:
            waited = list(pool.map(one, range(8)))
        deadline = time.monotonic() + 15
        busy = 0.0
        while busy < 1.6 and time.monotonic() < deadline:
            time.sleep(0.3)
            busy = sum(s.busy_s for s in slots(redis_db, process))
    finally:
        _stop(proc)
    published = slots(redis_db, process)
    assert all(s.busy_flushes == s.flushes for s in published)  # every flush reports it
    busy = sum(s.busy_s for s in published)
    assert 1.6 <= busy <= sum(waited) + 0.5, (busy, waited)
