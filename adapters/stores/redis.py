"""History in Redis, beside the request samples and the lock.

Layout (``<name>`` is the lock's name, one per app): minutes of one process and one UTC day in a
string ``<name>:history:m:<process>:<yyyymmdd>``, one compact CSV line appended per minute (a
minute written twice, as after a restart, is read as its last line), which expires
``RETENTION_S`` after the day's end; events in a sorted
set ``<name>:history:e:<process>`` scored by time, trimmed to ``RETENTION_S`` and to
``MAX_EVENTS`` on every write (``*`` holds the daemon's own events); the processes that have
history in the set ``<name>:history:processes``; small named values (the settings in force,
each process's state sentence) in ``<name>:history:meta:<key>``. Measured size: docs/dashboard.md.

Reading keeps the days it parsed (at most ``CACHED_DAYS``, the least recently read dropped
first): a day's string only grows, so a later read fetches and parses only what was appended
since (``GETRANGE`` from the length read), and a string shorter than that was replaced and is
read again whole. The dashboard's 14-day view of five processes then parses each minute once
(and holds about 33 MB of parsed minutes while it is served).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis

from autoscaler.history import MAX_EVENTS, RETENTION_S, Event, Minute

_DAY = 86400
#: parsed days a store keeps for its reads: 15 days of 8 processes (a day of one process is
#: 1,440 minutes, 0.47 MB parsed as measured with tracemalloc: 56 MB at most)
CACHED_DAYS = 120


def _day(t: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(t))


class RedisStore:
    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.prefix = f"{name}:history"
        # key of a day's string -> (bytes of it parsed, its minutes by time)
        self._days: OrderedDict[str, tuple[int, dict[int, Minute]]] = OrderedDict()
        self._reading = threading.Lock()  # a read's offsets and what it parses go together

    @classmethod
    def from_url(cls, url: str, name: str, timeout: float = 2.0, **options: Any) -> RedisStore:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, **options
        )
        return cls(client, name)

    def write(self, minutes: Mapping[str, Sequence[Minute]], events: Sequence[Event]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for process, rows in minutes.items():
            pipe.sadd(f"{self.prefix}:processes", process)
            for row in rows:
                key = f"{self.prefix}:m:{process}:{_day(row.t)}"
                pipe.append(key, row.to_line())
                pipe.expireat(key, int(row.t // _DAY + 1) * _DAY + RETENTION_S)
        by_process: dict[str, list[Event]] = {}
        for event in events:
            by_process.setdefault(event.process, []).append(event)
        for process, evs in by_process.items():
            key = f"{self.prefix}:e:{process}"
            pipe.zadd(key, {e.to_json(): e.t for e in evs})
            pipe.zremrangebyscore(key, "-inf", max(e.t for e in evs) - RETENTION_S)
            pipe.zremrangebyrank(key, 0, -MAX_EVENTS - 1)
            pipe.expire(key, RETENTION_S)
        if len(pipe):
            pipe.execute()

    def read(self, process: str, since: float, until: float) -> tuple[list[Minute], list[Event]]:
        with self._reading:
            return self._read(process, since, until)

    def _read(self, process: str, since: float, until: float) -> tuple[list[Minute], list[Event]]:
        pipe = self.client.pipeline(transaction=False)
        keys = []
        day = int(since // _DAY) * _DAY
        while day < until:
            key = f"{self.prefix}:m:{process}:{_day(day)}"
            keys.append(key)
            pipe.strlen(key)
            pipe.getrange(key, self._days[key][0] if key in self._days else 0, -1)
            day += _DAY
        for p in (process, "*"):
            pipe.zrangebyscore(f"{self.prefix}:e:{p}", since, f"({until}")
        results = pipe.execute()
        rows: list[Minute] = []
        for i, key in enumerate(keys):
            by_t = self._day_rows(key, int(results[2 * i]), results[2 * i + 1] or b"")
            rows.extend(m for t, m in by_t.items() if since <= t < until)
        events = [Event.from_json(v) for z in results[-2:] for v in z]
        return sorted(rows, key=lambda m: m.t), sorted(events, key=lambda e: e.t)

    def _day_rows(self, key: str, length: int, tail: bytes) -> dict[int, Minute]:
        """The minutes of a day's string, from what was parsed of it and the ``tail`` read
        after it; ``length`` is the string's length read just before."""
        offset, by_t = self._days.pop(key, (0, {}))
        if length < offset:  # replaced (expired and written again): read it whole
            offset, by_t = 0, {}
            tail = cast(bytes, self.client.get(key) or b"")
        for line in tail.decode().splitlines():
            row = Minute.from_line(line)
            by_t[row.t] = row  # the last line of a minute wins
        if by_t:
            self._days[key] = (offset + len(tail), by_t)
            while len(self._days) > CACHED_DAYS:
                self._days.popitem(last=False)
        return by_t

    def processes(self) -> list[str]:
        members = cast(set[bytes], self.client.smembers(f"{self.prefix}:processes"))
        return sorted(p.decode() for p in members)

    def put_meta(self, key: str, value: str) -> None:
        self.client.set(f"{self.prefix}:meta:{key}", value, ex=RETENTION_S)

    def get_meta(self, key: str) -> str | None:
        value = cast(bytes | None, self.client.get(f"{self.prefix}:meta:{key}"))
        return None if value is None else value.decode()

    def close(self) -> None:
        self.client.close()
