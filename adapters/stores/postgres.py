"""History in PostgreSQL, beside the SQL job backends and the lock.

Two tables in the lock's schema (created on first use): ``autoscaler_history_minutes (name,
process, t, row)`` with primary key ``(name, process, t)`` and ``autoscaler_history_events
(name, process, t, event)``; ``name`` is the lock's name, one per app. Rows older than
``RETENTION_S`` are deleted at most once per hour of history, and events beyond
``MAX_EVENTS`` per process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import psycopg

from autoscaler.history import MAX_EVENTS, RETENTION_S, Event, Minute

_T = TypeVar("_T")
_Conn = psycopg.Connection[tuple[object, ...]]

_DDL = """
create table if not exists {schema}autoscaler_history_minutes (
  name text not null, process text not null, t bigint not null, row text not null,
  primary key (name, process, t));
create table if not exists {schema}autoscaler_history_events (
  name text not null, process text not null, t double precision not null, event text not null);
create table if not exists {schema}autoscaler_history_meta (
  name text not null, key text not null, value text not null, primary key (name, key));
create index if not exists autoscaler_history_events_t
  on {schema}autoscaler_history_events (name, process, t);
"""


class PostgresStore:
    def __init__(self, url: str, name: str, schema: str | None = None, timeout: float = 2.0):
        self.url = url
        self.name = name
        self.schema = f'"{schema}".' if schema else ""
        self.timeout = timeout
        self._conn: _Conn | None = None
        self._pruned = 0.0  # data time of the last prune: at most one an hour of history

    def _connection(self) -> _Conn:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, round(self.timeout)),
                options=f"-c statement_timeout={int(self.timeout * 1000)}",
            )
            self._conn.execute(_DDL.format(schema=self.schema).encode())
        return self._conn

    def _run(self, fn: Callable[[_Conn], _T]) -> _T:
        try:
            return fn(self._connection())
        except psycopg.Error:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            raise

    def write(self, minutes: Mapping[str, Sequence[Minute]], events: Sequence[Event]) -> None:
        s = self.schema
        rows = [(self.name, p, m.t, m.to_json()) for p, ms in minutes.items() for m in ms]
        evs = [(self.name, e.process, e.t, e.to_json()) for e in events]
        newest = max([m[2] for m in rows] + [e[2] for e in evs], default=0.0)

        def go(conn: _Conn) -> None:
            with conn.cursor() as cur:
                if rows:
                    cur.executemany(
                        f"insert into {s}autoscaler_history_minutes values (%s, %s, %s, %s) "
                        "on conflict (name, process, t) do update set row = excluded.row",
                        rows,
                    )
                if evs:
                    cur.executemany(
                        f"insert into {s}autoscaler_history_events values (%s, %s, %s, %s)", evs
                    )
                if newest - self._pruned >= 3600 or len(evs) > 1000:
                    self._prune(cur, newest)

        self._run(go)

    def _prune(self, cur: psycopg.Cursor[tuple[object, ...]], newest: float) -> None:
        s, horizon = self.schema, newest - RETENTION_S
        cur.execute(
            f"delete from {s}autoscaler_history_minutes where name = %s and t < %s",
            (self.name, horizon),
        )
        cur.execute(
            f"select distinct process from {s}autoscaler_history_events where name = %s",
            (self.name,),
        )
        for (process,) in cur.fetchall():
            cur.execute(
                f"delete from {s}autoscaler_history_events where name = %s and process = %s "
                f"and t < greatest(%s, (select t from {s}autoscaler_history_events where "
                "name = %s and process = %s order by t desc offset %s limit 1))",
                (self.name, process, horizon, self.name, process, MAX_EVENTS - 1),
            )
        self._pruned = newest

    def read(self, process: str, since: float, until: float) -> tuple[list[Minute], list[Event]]:
        s = self.schema

        def go(conn: _Conn) -> tuple[list[Minute], list[Event]]:
            with conn.cursor() as cur:
                cur.execute(
                    f"select row from {s}autoscaler_history_minutes where name = %s and "
                    "process = %s and t >= %s and t < %s order by t",
                    (self.name, process, since, until),
                )
                rows = [Minute.from_json(str(r[0])) for r in cur.fetchall()]
                cur.execute(
                    f"select event from {s}autoscaler_history_events where name = %s and "
                    "process in (%s, '*') and t >= %s and t < %s order by t",
                    (self.name, process, since, until),
                )
                return rows, [Event.from_json(str(r[0])) for r in cur.fetchall()]

        return self._run(go)

    def processes(self) -> list[str]:
        s = self.schema

        def go(conn: _Conn) -> list[str]:
            with conn.cursor() as cur:
                cur.execute(
                    f"select distinct process from {s}autoscaler_history_minutes "
                    "where name = %s order by 1",
                    (self.name,),
                )
                return [str(r[0]) for r in cur.fetchall()]

        return self._run(go)

    def put_meta(self, key: str, value: str) -> None:
        s = self.schema

        def go(conn: _Conn) -> None:
            conn.execute(
                f"insert into {s}autoscaler_history_meta values (%s, %s, %s) "
                "on conflict (name, key) do update set value = excluded.value",
                (self.name, key, value),
            )

        self._run(go)

    def get_meta(self, key: str) -> str | None:
        s = self.schema

        def go(conn: _Conn) -> str | None:
            row = conn.execute(
                f"select value from {s}autoscaler_history_meta where name = %s and key = %s",
                (self.name, key),
            ).fetchone()
            return None if row is None else str(row[0])

        return self._run(go)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
