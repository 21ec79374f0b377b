"""History in Redis, beside the request samples and the lock.

Layout (``<name>`` is the lock's name, one per app): minutes of one process and one UTC day in a
string ``<name>:history:m:<process>:<yyyymmdd>``, one compact CSV line appended per minute (a
minute written twice, as after a restart, is read as its last line), which expires
``RETENTION_S`` after the day's end; events in a sorted
set ``<name>:history:e:<process>`` scored by time, trimmed to ``RETENTION_S`` and to
``MAX_EVENTS`` on every write (``*`` holds the daemon's own events); the processes that have
history in the set ``<name>:history:processes``; small named values (the settings in force,
each process's state sentence) in ``<name>:history:meta:<key>``. Measured size: docs/dashboard.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis

from autoscaler.history import MAX_EVENTS, RETENTION_S, Event, Minute

_DAY = 86400


def _day(t: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(t))


class RedisStore:
    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.prefix = f"{name}:history"

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
        pipe = self.client.pipeline(transaction=False)
        day = int(since // _DAY) * _DAY
        while day < until:
            pipe.get(f"{self.prefix}:m:{process}:{_day(day)}")
            day += _DAY
        for p in (process, "*"):
            pipe.zrangebyscore(f"{self.prefix}:e:{p}", since, f"({until}")
        results = pipe.execute()
        by_t: dict[int, Minute] = {}
        for text in results[:-2]:
            for line in (text or b"").decode().splitlines():
                row = Minute.from_line(line)
                if since <= row.t < until:
                    by_t[row.t] = row  # the last line of a minute wins
        rows = list(by_t.values())
        events = [Event.from_json(v) for z in results[-2:] for v in z]
        return sorted(rows, key=lambda m: m.t), sorted(events, key=lambda e: e.t)

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
