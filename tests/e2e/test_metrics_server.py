"""The metrics server under idle, slow and too many clients, on loopback (issue 14 item 15): idle
connections hold no thread and are closed, slow ones too, and ``/healthz`` keeps answering, also
in a real daemon whose open-file limit is 48 with sixty idle connections open (more than it
has descriptors left; forty were enough with the daemon the issue was found with)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from autoscaler import metrics as metrics_module
from autoscaler.clock import FakeClock
from autoscaler.metrics import HealthState, Metrics, MetricsServer, serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricsServer]:
    monkeypatch.setattr(metrics_module, "REQUEST_TIMEOUT", 1.0)
    srv = serve(Metrics(), HealthState(15.0, FakeClock()), "127.0.0.1", free_port())
    yield srv
    srv.shutdown()


def url(srv: MetricsServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def idle(srv: MetricsServer, n: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", srv.server_address[1])) for _ in range(n)]


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:  # closed with our bytes unread: a reset
        return True
    except TimeoutError:
        return False


def test_metrics_healthz_and_errors_are_answered(server: MetricsServer) -> None:
    assert "autoscaler_leader" in httpx.get(url(server, "/metrics"), timeout=2).text
    health = httpx.get(url(server, "/healthz"), timeout=2)
    assert (health.status_code, health.text) == (200, "starting\n")
    assert httpx.get(url(server, "/nope"), timeout=2).status_code == 404
    assert httpx.post(url(server, "/metrics"), timeout=2).status_code == 405


def test_forty_idle_connections_do_not_keep_healthz_waiting(server: MetricsServer) -> None:
    sockets = idle(server, 40)
    try:
        for _ in range(5):  # each within the client's 2 s timeout, or httpx raises
            assert httpx.get(url(server, "/healthz"), timeout=2).status_code == 200
        # the idle ones are closed by the server: never more than MAX_OPEN held, and none after
        # the request timeout
        assert all(closed_by_peer(s, within=3.0) for s in sockets)
    finally:
        for s in sockets:
            s.close()


def test_a_slow_client_is_closed_and_others_are_served_meanwhile(server: MetricsServer) -> None:
    slow = socket.create_connection(("127.0.0.1", server.server_address[1]))
    try:
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        closed_at = None
        started = time.monotonic()
        for byte in request[:-2]:  # one byte every 0.2 s, never the end of the headers
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed_at = time.monotonic()
                break
            assert httpx.get(url(server, "/healthz"), timeout=2).status_code == 200
            time.sleep(0.2)
            if time.monotonic() - started > 3.0:
                break
        assert closed_at is not None or closed_by_peer(slow, within=2.0)
        assert server.shed >= 1
    finally:
        slow.close()


def test_an_oversized_request_is_closed_unanswered(server: MetricsServer) -> None:
    with socket.create_connection(("127.0.0.1", server.server_address[1])) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 20_000)
        assert closed_by_peer(sock, within=2.0)
    assert httpx.get(url(server, "/healthz"), timeout=2).status_code == 200


#: ``autoscaler run`` with at most 48 open files (the limit the issue was found with)
LIMITED_RUN = (
    "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48)); "
    "sys.argv = ['autoscaler', 'run']; runpy.run_module('autoscaler', run_name='__main__')"
)


def test_a_daemon_with_48_open_files_answers_healthz_with_sixty_idle_connections(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOSCALER_", "REDIS_URL"))}
    env.update(AUTOSCALER_METRICS_PORT=str(port), AUTOSCALER_INTERVAL="1s")
    with (tmp_path / "daemon.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", LIMITED_RUN],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()[-2000:]
            time.sleep(0.2)
        for _ in range(60):  # more than the daemon has file descriptors left
            sockets.append(socket.create_connection(("127.0.0.1", port)))
        for _ in range(5):
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
            assert health.status_code == 200
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()[-2000:]
    finally:
        for s in sockets:
            s.close()
        proc.terminate()
        proc.wait(10)
