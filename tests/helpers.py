"""Hand-written fakes for the safety tests: a TCP proxy that can cut a backend (the step clock
is ``autoscaler.clock.FakeClock``); a stopwatch that bounds a measured age from above."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import redis

REDIS_URL = "redis://127.0.0.1:6379/8"
REDIS_URL_2 = "redis://127.0.0.1:6379/9"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"

#: what a reading's clock (the database's ``now()``, a server's ``time.time()``) and the test's
#: monotonic clock may disagree by over a few seconds: timestamp rounding, clock slewing
CLOCK_SLACK_MS = 50.0


class Stopwatch:
    """Wall time measured by the test around its own steps, for the upper bound of an age.

    Started just before a job is written, ``upper()`` read after a reading is the most that
    job's age can be as the reading says it: the time elapsed (however slow the machine), less
    ``after_ms`` for a job due that long after the start, plus ``CLOCK_SLACK_MS``. Started just
    after a job is written, ``lower()`` read before a reading is the least that job's age can
    be as the reading would say it: what a test compares with to show a job was left out.
    """

    def __init__(self) -> None:
        self._start = time.monotonic()

    def ms(self) -> float:
        """Milliseconds since the stopwatch started."""
        return (time.monotonic() - self._start) * 1000.0

    def upper(self, after_ms: float = 0.0) -> float:
        return self.ms() - after_ms + CLOCK_SLACK_MS

    def lower(self, after_ms: float = 0.0) -> float:
        return self.ms() - after_ms - CLOCK_SLACK_MS


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a backend; ``cut()`` drops every connection and refuses new
    ones (a network partition), ``heal()`` accepts again."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = True
        self._conns: list[socket.socket] = []
        self._guard = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._guard:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._open = False
        with self._guard:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def heal(self) -> None:
        self._open = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


def empty_redis(url: str) -> Iterator[redis.Redis]:
    """A client of the Redis database at ``url``, emptied before and after: the body of the
    folders' Redis fixtures (``yield from empty_redis(URL)``)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
