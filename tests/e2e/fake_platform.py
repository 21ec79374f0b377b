"""A minimal fake of Heroku's formation API, shared by several daemons, plus a signal endpoint,
on the one fake-server base (``tests.platforms.fakeserver.FakeServer``).

Every write lands in ``writes()`` with the daemon that sent it (its API token) and what the lock
backend said at that very moment (``epoch_now()``): the lease epoch and whether a lease was
held. That is how the two-daemon tests check that no write ever comes from a process that does
not hold the current lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.platforms.fakeserver import Call, FakeServer, Reply


@dataclass
class Write:
    token: str
    updates: dict[str, int]
    at: float  # time.monotonic() on arrival
    epoch: int | None  # the lock backend's epoch at that moment
    held: bool  # whether the lock backend showed a holder at that moment


class FakeFormationApi(FakeServer):
    """``GET|PATCH /apps/<app>/formation`` and ``GET /signal`` (the ``http`` source's shape).

    The signal answers ``high`` seconds of job latency during the first half of every
    ``period`` seconds and 0 during the second half, so that the daemons keep scaling. Serves
    from construction until ``close()``.
    """

    name = "formation"

    def __init__(
        self,
        epoch_now: Callable[[], tuple[int | None, bool]],
        process: str = "worker",
        quantity: int = 1,
        period: float = 4.0,
        high: float = 60.0,
    ) -> None:
        super().__init__()
        self.epoch_now = epoch_now
        self.process = process
        self.quantity = quantity
        self.updated_at = time.time() - 3600
        self.period, self.high = period, high
        self._writes: list[Write] = []
        #: when set, every PATCH is answered 422 with this message (and logged in ``refused``)
        self.refuse: str | None = None
        self.refused: list[float] = []
        self.reads: list[str] = []
        self.start()

    def route(self, call: Call) -> Reply:
        headers = {"RateLimit-Remaining": "4000"}
        if call.method == "GET" and call.path.startswith("/signal"):
            phase = (time.monotonic() % self.period) < self.period / 2
            value = self.high if phase else 0.0
            return Reply(200, [{"name": self.process, "value": value}], headers)
        if call.method == "PATCH":
            updates = {u["type"]: int(u["quantity"]) for u in call.body["updates"]}
            epoch, held = self.epoch_now()
            token = call.headers.get("authorization", "").removeprefix("Bearer ")
            if self.refuse is not None:
                self.refused.append(time.monotonic())
                return Reply(422, {"id": "invalid_params", "message": self.refuse}, headers)
            self._writes.append(Write(token, updates, time.monotonic(), epoch, held))
            self.quantity = updates.get(self.process, self.quantity)
            self.updated_at = time.time()
        else:
            self.reads.append(call.headers.get("authorization", ""))
        return Reply(200, [self._dyno()], headers)

    def _dyno(self) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.updated_at))
        return {
            "type": self.process,
            "quantity": self.quantity,
            "size": "Standard-1X",
            "updated_at": stamp,
        }

    def writes(self) -> list[Write]:
        with self.lock:
            return list(self._writes)

    def close(self) -> None:
        self.stop()
