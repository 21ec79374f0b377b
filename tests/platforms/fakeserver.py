"""A local HTTP server for fake platform APIs: real sockets, a request journal, fault knobs.

A subclass implements ``route(call) -> Reply`` (the platform's behaviour) and ``error(status)``
(the platform's error body). Faults are queued (``fail``, ``slow``, ``drop``) or random
(``chaos``), and apply to the next matching requests:

- ``fail(status)``: answer that status with the platform's error body, change nothing;
- ``slow(delay)``: handle the request, then wait ``delay`` real seconds before answering (a
  client with a shorter timeout gives up after its request was processed);
- ``drop(apply=False)``: close the connection without an answer, after handling the request if
  ``apply``.

Every request lands in ``journal`` with what was answered (``fault`` says which fault, if any).
Time (rate limits, timestamps) comes from an injected clock, so that tests can run a simulated
hour in seconds.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from autoscaler.clock import Clock, SystemClock


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serialisable, bytes sent as they are, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # real seconds to wait before answering (after handling the request)


@dataclass
class Call:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    at: float  # the fake's clock (monotonic seconds) on arrival
    status: int | None = None  # None: the connection was dropped
    reply: Any = None
    fault: str | None = None


@dataclass
class Fault:
    kind: str  # "status", "slow" or "drop"
    status: int = 500
    delay: float = 0.0
    apply: bool = False
    method: str | None = None
    path: str | None = None  # only requests whose path contains this
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path in path
        )


class FakeServer:
    """Base class: subclasses set ``name`` and implement ``route`` and ``error``."""

    name = "fake"

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.journal: list[Call] = []
        self.lock = threading.RLock()
        self._faults: list[Fault] = []
        self.leak_auth = False  # injected errors quote the Authorization header (redaction tests)
        self._chaos: tuple[float, random.Random, tuple[str, ...], float] | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one small answer per request: no 40 ms stalls

            def _any(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the fake first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- fault knobs -------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and the platform's body."""
        with self.lock:
            self._faults.append(
                Fault(
                    "status", status, method=method, path=path, times=times, headers=headers or {}
                )
            )

    def slow(self, delay: float, *, method: str | None = None, path: str | None = None,
             times: int = 1) -> None:  # fmt: skip
        with self.lock:
            self._faults.append(Fault("slow", delay=delay, method=method, path=path, times=times))

    def drop(self, *, apply: bool = False, method: str | None = None, path: str | None = None,
             times: int = 1) -> None:  # fmt: skip
        with self.lock:
            self._faults.append(Fault("drop", apply=apply, method=method, path=path, times=times))

    def chaos(
        self,
        rate: float,
        *,
        seed: int = 0,
        kinds: tuple[str, ...] = ("429", "500", "503", "slow", "drop"),
        delay: float = 0.2,
    ) -> None:
        """From now on, answer a share ``rate`` of requests with a random fault of ``kinds``."""
        with self.lock:
            self._chaos = (rate, random.Random(seed), kinds, delay)

    def calm(self) -> None:
        """No more faults, queued or random."""
        with self.lock:
            self._faults.clear()
            self._chaos = None

    def calls(self, method: str | None = None, path: str | None = None) -> list[Call]:
        with self.lock:
            return [
                c
                for c in self.journal
                if (method is None or c.method == method) and (path is None or path in c.path)
            ]

    # -- to implement --------------------------------------------------------------------------

    def route(self, call: Call) -> Reply:
        raise NotImplementedError

    def error(self, status: int) -> Reply:
        """The platform's answer for an injected error status."""
        return Reply(status, {"message": f"injected {status}"})

    # -- serving -----------------------------------------------------------------------------

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
            if self._chaos is not None:
                rate, rng, kinds, delay = self._chaos
                if rng.random() < rate:
                    kind = rng.choice(kinds)
                    if kind.isdigit():
                        return Fault("status", int(kind))
                    return Fault(kind, delay=delay, apply=rng.random() < 0.5)
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        call = Call(handler.command, handler.path, headers, body, self.clock.now().mono)
        fault = self._next_fault(call.method, call.path)
        with self.lock:
            self.journal.append(call)
            kind = None if fault is None else fault.kind
            if fault is not None and kind == "status":
                error = self.error(fault.status)
                error.headers.update(fault.headers)
                if self.leak_auth and isinstance(error.body, dict):
                    error.body["message"] = f"{error.body.get('message')} for {headers}"
                reply: Reply | None = error
                call.fault = str(fault.status)
            elif fault is not None and kind == "drop" and not fault.apply:
                reply = None
            else:
                reply = self.route(call)
            if fault is not None and kind != "status":
                call.fault = f"{kind}+applied" if kind == "drop" and fault.apply else kind
            if reply is None or kind == "drop":
                handler.close_connection = True
                return
            call.status, call.reply = reply.status, reply.body
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        time.sleep(reply.delay)
        self._write(handler, reply)

    def _write(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, bytes):
            data = reply.body
        else:
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if data:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
