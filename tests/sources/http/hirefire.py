"""A HireFire-shaped endpoint on 127.0.0.1 (real sockets, on the one fake-server base
``tests.platforms.fakeserver.FakeServer``): what hirefire-resource's ``/hirefire/<token>/info``
answers, ``[{"name": ..., "value": ...}]``, with faults on demand (``answer``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from tests.platforms.fakeserver import Call, FakeServer, Reply

TOKEN = "a1b2c3d4e5f6a7b8c9d0e1f2"


@dataclass
class Answer:
    status: int = 200
    body: bytes | None = None
    delay: float = 0.0
    oldest_enqueued_at: float | None = None  # what a HireFire latency macro would read
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)  # request headers, lower-cased
    served: list[float] = field(default_factory=list)  # the latencies answered, in seconds

    def render(self) -> bytes:
        if self.body is not None:
            return self.body
        age = 0.0 if self.oldest_enqueued_at is None else time.time() - self.oldest_enqueued_at
        self.served.append(age)
        return json.dumps([{"name": "web", "value": 3}, {"name": "worker", "value": age}]).encode()


class FakeHireFire(FakeServer):
    """Answers every request with ``answer`` (replace it to change what comes next)."""

    name = "hirefire"

    def __init__(self, answer: Answer | None = None) -> None:
        super().__init__()
        self.answer = answer or Answer()

    def route(self, call: Call) -> Reply:
        answer = self.answer
        answer.seen.append(dict(call.headers))
        return Reply(answer.status, answer.render(), dict(answer.headers), answer.delay)


def url_of(srv: FakeHireFire) -> str:
    return f"{srv.url}/hirefire/{TOKEN}/info"
