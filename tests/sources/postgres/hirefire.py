"""A HireFire-shaped endpoint on 127.0.0.1 (real sockets): what hirefire-resource's
``/hirefire/<token>/info`` answers, ``[{"name": ..., "value": ...}]``, with faults on demand."""

from __future__ import annotations

import contextlib
import http.server
import json
import time
from dataclasses import dataclass, field

TOKEN = "a1b2c3d4e5f6a7b8c9d0e1f2"


@dataclass
class Answer:
    status: int = 200
    body: bytes | None = None
    delay: float = 0.0
    oldest_enqueued_at: float | None = None  # what a HireFire latency macro would read
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)
    served: list[float] = field(default_factory=list)  # the latencies answered, in seconds

    def render(self) -> bytes:
        if self.body is not None:
            return self.body
        age = 0.0 if self.oldest_enqueued_at is None else time.time() - self.oldest_enqueued_at
        self.served.append(age)
        return json.dumps([{"name": "web", "value": 3}, {"name": "worker", "value": age}]).encode()


class FakeHireFire(http.server.ThreadingHTTPServer):
    answer: Answer


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeHireFire

    def do_GET(self) -> None:
        answer = self.server.answer
        answer.seen.append(dict(self.headers))
        time.sleep(answer.delay)
        body = answer.render()
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def url_of(srv: FakeHireFire) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/hirefire/{TOKEN}/info"
