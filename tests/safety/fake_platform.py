"""A minimal fake of Heroku's formation API, shared by several daemons, plus a signal endpoint.

Every write lands in ``journal`` with the daemon that sent it (its API token) and what the lock
backend said at that very moment (``epoch_now()``): the lease epoch and whether a lease was
held. That is how the two-daemon tests check that no write ever comes from a process that does
not hold the current lease.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Write:
    token: str
    updates: dict[str, int]
    at: float  # time.monotonic() on arrival
    epoch: int | None  # the lock backend's epoch at that moment
    held: bool  # whether the lock backend showed a holder at that moment


class FakeFormationApi:
    """``GET|PATCH /apps/<app>/formation`` and ``GET /signal`` (the ``http`` source's shape).

    The signal answers ``high`` seconds of job latency during the first half of every
    ``period`` seconds and 0 during the second half, so that the daemons keep scaling.
    """

    def __init__(
        self,
        epoch_now: Callable[[], tuple[int | None, bool]],
        process: str = "worker",
        quantity: int = 1,
        period: float = 4.0,
        high: float = 60.0,
    ) -> None:
        self.epoch_now = epoch_now
        self.process = process
        self.quantity = quantity
        self.updated_at = time.time() - 3600
        self.period, self.high = period, high
        self.journal: list[Write] = []
        #: when set, every PATCH is answered 422 with this message (and logged in ``refused``)
        self.refuse: str | None = None
        self.refused: list[float] = []
        self.reads: list[str] = []
        self._guard = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/signal"):
                    phase = (time.monotonic() % fake.period) < fake.period / 2
                    value = fake.high if phase else 0.0
                    self._reply(200, [{"name": fake.process, "value": value}])
                    return
                fake.reads.append(self.headers.get("Authorization", ""))
                self._reply(200, [fake._dyno()])

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                updates = {u["type"]: int(u["quantity"]) for u in body["updates"]}
                epoch, held = fake.epoch_now()
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if fake.refuse is not None:
                    with fake._guard:
                        fake.refused.append(time.monotonic())
                    self._reply(422, {"id": "invalid_params", "message": fake.refuse})
                    return
                with fake._guard:
                    fake.journal.append(Write(token, updates, time.monotonic(), epoch, held))
                    fake.quantity = updates.get(fake.process, fake.quantity)
                    fake.updated_at = time.time()
                self._reply(200, [fake._dyno()])

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("RateLimit-Remaining", "4000")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _dyno(self) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.updated_at))
        return {
            "type": self.process,
            "quantity": self.quantity,
            "size": "Standard-1X",
            "updated_at": stamp,
        }

    def writes(self) -> list[Write]:
        with self._guard:
            return list(self.journal)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
