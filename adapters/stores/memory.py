"""History kept in memory: the ``sim`` platform's store (and tests'). Bounded like the others."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

from autoscaler.history import MAX_EVENTS, RETENTION_S, Event, Minute


class MemoryStore:
    def __init__(self) -> None:
        self._minutes: dict[str, dict[int, Minute]] = {}
        self._events: dict[str, list[Event]] = {}
        self._meta: dict[str, str] = {}

    def write(self, minutes: Mapping[str, Sequence[Minute]], events: Sequence[Event]) -> None:
        newest = 0.0
        for process, rows in minutes.items():
            kept = self._minutes.setdefault(process, {})
            for row in rows:
                kept[row.t] = row
                newest = max(newest, row.t)
        for event in events:
            bisect.insort(self._events.setdefault(event.process, []), event, key=lambda e: e.t)
            newest = max(newest, event.t)
        horizon = newest - RETENTION_S
        for kept in self._minutes.values():
            for t in [t for t in kept if t < horizon]:
                del kept[t]
        for process, evs in self._events.items():
            cut = bisect.bisect_left(evs, horizon, key=lambda e: e.t)
            self._events[process] = evs[max(cut, len(evs) - MAX_EVENTS) :]

    def read(self, process: str, since: float, until: float) -> tuple[list[Minute], list[Event]]:
        rows = sorted(
            (m for t, m in self._minutes.get(process, {}).items() if since <= t < until),
            key=lambda m: m.t,
        )
        events = [
            e for p in (process, "*") for e in self._events.get(p, []) if since <= e.t < until
        ]
        return rows, sorted(events, key=lambda e: e.t)

    def processes(self) -> list[str]:
        return sorted(self._minutes)

    def put_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def close(self) -> None:
        pass
