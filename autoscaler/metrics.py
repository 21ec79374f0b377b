"""Prometheus metrics and the ``/healthz`` endpoint. The loop records; nothing else imports
prometheus_client."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from autoscaler.model import Decision


class Metrics:
    """The daemon's metrics, on a registry of its own (so tests can make several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.signal = Gauge(
            "autoscaler_signal_ms", "Signal the policy saw (ms)", ["process"], registry=r
        )
        self.quantity = Gauge(
            "autoscaler_quantity", "Quantity read from the platform", ["process"], registry=r
        )
        self.desired = Gauge("autoscaler_desired", "Desired quantity", ["process"], registry=r)
        self.decisions = Counter(
            "autoscaler_decisions",
            "Decisions by action and reason",
            ["process", "action", "reason"],
            registry=r,
        )
        self.source_errors = Counter(
            "autoscaler_source_errors", "Failed source polls", ["process"], registry=r
        )
        self.platform_errors = Counter(
            "autoscaler_platform_errors", "Failed platform calls", ["kind"], registry=r
        )
        self.writes = Counter(
            "autoscaler_writes", "Formation changes sent", ["process"], registry=r
        )
        self.tick_seconds = Histogram("autoscaler_tick_seconds", "Duration of one tick", registry=r)
        self.last_success = Gauge(
            "autoscaler_last_successful_tick_timestamp_seconds",
            "Wall-clock time of the last tick that completed",
            registry=r,
        )
        self.leader = Gauge("autoscaler_leader", "1 while this daemon holds the lease", registry=r)
        self.capacity = Gauge(
            "autoscaler_capacity_per_instance",
            "Requests/s one instance carries with the signal in the band, as learned",
            ["process"],
            registry=r,
        )
        self.boot = Gauge(
            "autoscaler_boot_seconds",
            "How long the policy's upscales took to serve, as learned (where the platform says)",
            ["process"],
            registry=r,
        )
        self.sample_age = Gauge(
            "autoscaler_sample_age_seconds", "Age of the newest data", ["process"], registry=r
        )

    def record(self, decision: Decision) -> None:
        p = decision.process
        if decision.signal_ms is not None:
            self.signal.labels(p).set(decision.signal_ms)
        self.quantity.labels(p).set(decision.current)
        self.desired.labels(p).set(decision.desired)
        self.decisions.labels(p, decision.action.value, decision.reason.value).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthState:
    """Whether the daemon is doing its work: the last successful tick is recent enough."""

    def __init__(self, max_age: float, clock: Any) -> None:
        self.max_age = max_age
        self.clock = clock
        self.started = clock.now().mono
        self.last_success: float | None = None

    def ok(self) -> tuple[bool, str]:
        now = self.clock.now().mono
        if self.last_success is None:
            if now - self.started <= self.max_age:
                return True, "starting"
            return False, "no successful tick yet"
        age = now - self.last_success
        if age > self.max_age:
            return False, f"last successful tick {age:.0f}s ago"
        return True, f"last successful tick {age:.0f}s ago"


#: how many requests are answered at once; more complete requests than a few times this wait
#: their turn or, past ``MAX_QUEUED``, are closed unanswered
WORKERS = 4
MAX_QUEUED = 16
#: connections held open while their request arrives; past this the oldest is closed
MAX_OPEN = 32
#: a request must arrive whole within this many seconds of the connection; an answer must be
#: taken by the client within this many seconds
REQUEST_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 8192
LISTEN_BACKLOG = 128


class MetricsServer:
    """``/metrics`` and ``/healthz`` over HTTP/1.x, one request per connection, with bounds.

    One thread accepts connections and reads requests without blocking (``selectors``): an idle
    or slow client costs one open socket and no thread, is closed when its request has not
    arrived whole within ``REQUEST_TIMEOUT``, and at most ``MAX_OPEN`` such sockets are kept
    (the oldest goes first), so idle clients can neither exhaust the threads nor the process's
    open files. A complete request goes to a pool of ``WORKERS`` threads, which render the
    answer and send it with a ``WRITE_TIMEOUT``; past ``MAX_QUEUED`` waiting requests, new ones
    are closed unanswered. When accept() fails for lack of file descriptors, the oldest open
    connection is closed to make room.
    """

    def __init__(self, metrics: Metrics, health: HealthState, host: str, port: int) -> None:
        self.metrics, self.health = metrics, health
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(LISTEN_BACKLOG)
        self._listener.setblocking(False)
        self.server_address: tuple[Any, ...] = self._listener.getsockname()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._pending: dict[socket.socket, tuple[float, bytearray]] = {}  # insertion = age
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="metrics")
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._stop = threading.Event()
        self.shed = 0  # connections closed unanswered (too many, too slow, too large)
        self._thread = threading.Thread(target=self._loop, name="metrics", daemon=True)
        self._thread.start()

    # -- the accepting and reading thread -------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.25):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]
            self._expire()
        for conn in list(self._pending):
            self._close(conn)
        self._selector.close()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError:  # EMFILE/ENFILE: make room, the client retries or waits in backlog
                if not self._pending:
                    return
                self._close(next(iter(self._pending)))
                self.shed += 1
                continue
            conn.setblocking(False)
            if len(self._pending) >= MAX_OPEN:
                self._close(next(iter(self._pending)))
                self.shed += 1
            self._pending[conn] = (time.monotonic() + REQUEST_TIMEOUT, bytearray())
            self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        entry = self._pending.get(conn)
        if entry is None:  # closed earlier in this round (to make room)
            return
        buf = entry[1]
        try:
            chunk = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(conn)
            return
        buf += chunk
        if b"\r\n\r\n" not in buf and b"\n\n" not in buf:
            if len(buf) > MAX_REQUEST_BYTES:
                self._close(conn)
                self.shed += 1
            return
        self._selector.unregister(conn)
        del self._pending[conn]
        with self._queued_lock:
            if self._queued >= MAX_QUEUED:
                self.shed += 1
                conn.close()
                return
            self._queued += 1
        self._pool.submit(self._answer, conn, bytes(buf))

    def _expire(self) -> None:
        now = time.monotonic()
        for conn, (deadline, _) in list(self._pending.items()):
            if deadline <= now:
                self._close(conn)
                self.shed += 1

    def _close(self, conn: socket.socket) -> None:
        self._pending.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn)
        conn.close()

    # -- the workers ----------------------------------------------------------------------------

    def _answer(self, conn: socket.socket, request: bytes) -> None:
        try:
            status, ctype, body = self._respond(request)
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            conn.setblocking(True)
            conn.settimeout(WRITE_TIMEOUT)
            conn.sendall(head + body)
        except OSError:
            pass
        finally:
            with self._queued_lock:
                self._queued -= 1
            conn.close()

    def _respond(self, request: bytes) -> tuple[int, str, bytes]:
        line = request.split(b"\n", 1)[0].decode("latin-1").split()
        if len(line) != 3 or not line[2].startswith("HTTP/"):
            return 400, "text/plain", b"bad request\n"
        method, target = line[0], line[1].split("?", 1)[0]
        if method != "GET":
            return 405, "text/plain", b"method not allowed\n"
        if target == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self.metrics.render()
        if target == "/healthz":
            good, why = self.health.ok()
            return (200 if good else 503), "text/plain", (why + "\n").encode()
        return 404, "text/plain", b"not found\n"

    # -- the old server's surface ---------------------------------------------------------------

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def server_close(self) -> None:
        """Closed by ``shutdown`` already; kept for the ``socketserver`` interface."""


def serve(metrics: Metrics, health: HealthState, host: str, port: int) -> MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` from background threads; returns the server."""
    return MetricsServer(metrics, health, host, port)
