"""The policy's learned state in PostgreSQL, beside the lock: one row per lock name in
``<schema>.learned`` (the lock's schema, ``autoscaler_lock`` by default, created on first use).
Each call opens a short connection of its own (a save every few minutes).

Config: the lock's (``AUTOSCALER_LOCK_URL`` else ``DATABASE_URL``, ``AUTOSCALER_LOCK_NAME``,
``AUTOSCALER_LOCK_SCHEMA``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from autoscaler.configkit import DaemonConfig, EnvSettings
from autoscaler.locks.postgres import PostgresLockSettings, parse
from autoscaler.locks.state_common import decode, encode
from autoscaler.ports import StoreError
from autoscaler.redact import redact


class PostgresStateStore:
    def __init__(self, url: str, name: str, schema: str = "autoscaler_lock") -> None:
        self.url = url
        self.name = name
        self.schema = schema
        self._table = sql.Identifier(schema, "learned")

    def _run(self, query: sql.Composed, params: tuple[Any, ...], *, fetch: bool) -> Any:
        try:
            with psycopg.connect(
                self.url, autocommit=True, connect_timeout=5, application_name="autoscaler-state"
            ) as conn:
                conn.execute("SET statement_timeout = '5s'")
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, body text NOT NULL,"
                        " saved_at timestamptz NOT NULL DEFAULT now())"
                    ).format(self._table)
                )
                cursor = conn.execute(query, params)
                return cursor.fetchone() if fetch else None
        except psycopg.Error as exc:
            raise StoreError(redact(f"postgres state {self.name!r}: {exc}".strip())) from None

    def load(self) -> dict[str, object]:
        query = sql.SQL("SELECT body FROM {} WHERE name = %s").format(self._table)
        row = self._run(query, (self.name,), fetch=True)
        return decode(row[0] if row else None)

    def save(self, snapshots: Mapping[str, object]) -> None:
        query = sql.SQL(
            "INSERT INTO {} (name, body) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET body = EXCLUDED.body, saved_at = now()"
        ).format(self._table)
        self._run(query, (self.name, encode(snapshots)), fetch=False)

    def close(self) -> None:
        return None


def build(config: DaemonConfig, own: EnvSettings | None, scope: str) -> PostgresStateStore:
    """Beside the lock: its URL and name, from the lock's own settings (``own``)."""
    lock = parse(config, own if isinstance(own, PostgresLockSettings) else None, scope)
    return PostgresStateStore(lock.url, lock.name, lock.schema)
