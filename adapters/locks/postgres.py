"""Leader election with a PostgreSQL lease: a row holding the leader's random token, an epoch and
an expiry, renewed by the leader every tick.

- Acquire and renew are one statement (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``) on the
  row ``<schema>.leases(name)``: it takes the row if it is free or expired (and adds one to the
  epoch), extends it if it holds our token and has not expired (same epoch), else changes
  nothing and returns no row: someone else leads. Expiry is judged by the database's clock
  (``now()``), so the daemons' clocks play no part in who may take over.
- ``valid()`` is checked right before each write: the lease is trusted only while the local
  monotonic clock is before a deadline taken *before* the renewal was sent, minus a safety margin
  of a third of the TTL (as the Redis lease), *and* one query proves that the row still holds
  our token at our epoch with more than the margin left on the server. A leader that was frozen
  (SIGSTOP, a hung VM) past its lease fails both checks when it resumes, and writes nothing;
  meanwhile a follower took the expired row under a new epoch. A foreign token can neither renew
  nor release.
- Any database error drops the lease at once (self-fencing) and raises ``LockUnavailable``.
- Every statement stands alone (no session state, no advisory lock), so the lock also works
  through a transaction pooler (PgBouncer ``pool_mode=transaction``).

The table (schema ``autoscaler_lock`` by default, ``AUTOSCALER_LOCK_SCHEMA``) is created on
first use, and a table made by an earlier version (``name, epoch, acquired_at``) gets the
``holder`` and ``expires_at`` columns added.

Config: ``AUTOSCALER_LOCK_TTL`` (as for Redis: default three intervals, at least 15 s, at least
twice ``AUTOSCALER_INTERVAL``), ``AUTOSCALER_LOCK_URL`` (else ``DATABASE_URL``),
``AUTOSCALER_LOCK_NAME``, ``AUTOSCALER_LOCK_SCHEMA``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field

from autoscaler.configkit import DaemonConfig, LockAdapter, Matches, read
from autoscaler.locks.common import Held, LockUnavailable, lock_where
from autoscaler.locks.redis import RedisLockSettings, parse_ttl
from autoscaler.redact import redact

_SCHEMA = r"^[a-z_][a-z0-9_]{0,62}$"

# The row is ours to take when it is free (no holder), expired, or already ours and live; the
# epoch grows on every taking, never on a renewal. No row returned: someone else holds it.
_ACQUIRE = """
INSERT INTO {t} AS l (name, epoch, holder, expires_at, acquired_at)
VALUES (%(name)s, 1, %(token)s, now() + make_interval(secs => %(ttl)s), now())
ON CONFLICT (name) DO UPDATE SET
    epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()
                 THEN l.epoch ELSE l.epoch + 1 END,
    acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()
                       THEN l.acquired_at ELSE now() END,
    holder = EXCLUDED.holder,
    expires_at = EXCLUDED.expires_at
WHERE (l.holder = EXCLUDED.holder AND l.expires_at > now())
   OR l.holder IS NULL OR l.expires_at IS NULL OR l.expires_at <= now()
RETURNING l.epoch
"""
_STILL_OURS = """
SELECT holder = %(token)s AND epoch = %(epoch)s
       AND expires_at > now() + make_interval(secs => %(margin)s)
FROM {t} WHERE name = %(name)s
"""
_RELEASE = """
UPDATE {t} SET holder = NULL, expires_at = now()
WHERE name = %(name)s AND holder = %(token)s AND epoch = %(epoch)s
"""
_STATE = """
SELECT epoch, holder IS NOT NULL AND expires_at > now(),
       EXTRACT(EPOCH FROM expires_at - now())::float8
FROM {t} WHERE name = %(name)s
"""


@dataclass(frozen=True, slots=True)
class PostgresLockConfig:
    url: str
    name: str
    schema: str = "autoscaler_lock"
    ttl: float = 15.0  # seconds

    @property
    def margin(self) -> float:
        return self.ttl / 3


class PostgresLockSettings(RedisLockSettings):
    """The PostgreSQL lock's variables (``AUTOSCALER_LOCK_*``)."""

    schema_name: Annotated[str, Matches(_SCHEMA, "a schema name", "lowercase, digits, _")] = Field(
        "autoscaler_lock",
        validation_alias="AUTOSCALER_LOCK_SCHEMA",
        description="PostgreSQL schema of the epoch table",
    )


def parse(
    config: DaemonConfig, own: PostgresLockSettings | None = None, scope: str | None = None
) -> PostgresLockConfig:
    own = own or read(PostgresLockSettings, config.env)
    url, name = lock_where(config, own, scope, config.glob.database_url, "DATABASE_URL")
    ttl = parse_ttl(config.env, config.glob.interval, own)
    return PostgresLockConfig(url=url, name=name, schema=own.schema_name, ttl=ttl)


class PostgresLock:
    """A PostgreSQL lease. One instance per process; its token never leaves this object."""

    def __init__(
        self, config: PostgresLockConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._conn: psycopg.Connection[Any] | None = None
        self._held: Held | None = None
        self._token = secrets.token_hex(16)
        self._monotonic = monotonic
        self._table = sql.Identifier(config.schema, "leases")
        self._ready = False  # the table exists with the lease columns
        # every call is bounded well within the lease: a hung server cannot hold a tick for long
        self._timeout_s = max(1.0, min(5.0, config.ttl / 5))

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        timeout = self._timeout_s
        try:
            conn = psycopg.connect(
                self.config.url,
                autocommit=True,
                connect_timeout=max(2, int(timeout)),  # libpq's floor is 2 s
                application_name="autoscaler-lock",
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=int(timeout * 1000) + 1000,
            )
        except psycopg.Error as exc:
            raise self._error(exc) from None
        self._conn = conn
        return conn

    def _error(self, exc: BaseException) -> LockUnavailable:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return LockUnavailable(redact(f"postgres lock {self.config.name!r}: {text}"))

    def _drop(self) -> None:
        """Forget the lease and close the connection."""
        self._held = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _one(self, conn: psycopg.Connection[Any], statement: str,
             params: dict[str, Any]) -> tuple[Any, ...] | None:  # fmt: skip
        """One statement in a transaction of its own with a local statement timeout, sent in
        one round trip; no session state, so it works through a transaction pooler too."""
        query = sql.SQL(statement).format(t=self._table)
        with conn.pipeline(), conn.transaction():
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                (f"{int(self._timeout_s * 1000)}ms",),
            )
            return conn.execute(query, params).fetchone()

    # -- the Lock protocol ----------------------------------------------------------------------

    def acquire(self) -> Held | None:
        sent_at = self._monotonic()
        try:
            conn = self._connect()
            self._ensure_table(conn)
            row = self._one(
                conn,
                _ACQUIRE,
                {"name": self.config.name, "token": self._token, "ttl": self.config.ttl},
            )
        except psycopg.Error as exc:
            self._drop()
            raise self._error(exc) from None
        if row is None:
            self._held = None
            return None
        deadline = sent_at + self.config.ttl - self.config.margin
        self._held = Held(int(row[0]), self._token, deadline)
        return self._held

    def valid(self, lease: object) -> bool:
        held = self._held
        if held is None or lease is not held or self._monotonic() >= held.deadline:
            return False
        conn = self._conn
        if conn is None or conn.closed:
            return False
        params = {"name": self.config.name, "token": self._token, "epoch": held.epoch,
                  "margin": self.config.margin}  # fmt: skip
        try:
            row = self._one(conn, _STILL_OURS, params)
        except psycopg.Error:
            self._drop()
            return False
        if row is not None and row[0] is True:
            return True
        self._held = None
        return False

    def release(self, lease: object) -> None:
        held = self._held
        if held is None or lease is not held:
            return
        self._held = None
        conn = self._conn
        if conn is None or conn.closed:
            return
        params = {"name": self.config.name, "token": self._token, "epoch": held.epoch}
        try:
            self._one(conn, _RELEASE + " RETURNING epoch", params)
        except psycopg.Error as exc:
            self._drop()
            name, ttl = self.config.name, self.config.ttl
            raise LockUnavailable(
                redact(
                    f"postgres lock {name!r}: release failed ({exc}); it expires within {ttl:g}s"
                )
            ) from None

    def check(self) -> str:
        try:
            conn = self._connect()
            found = conn.execute(
                "SELECT to_regclass(%s)", (f"{self.config.schema}.leases",)
            ).fetchone()
            row = None
            if found is not None and found[0] is not None and self._has_lease_columns(conn):
                row = self._one(conn, _STATE, {"name": self.config.name})
        except psycopg.Error as exc:
            self._drop()
            raise self._error(exc) from None
        if row is None:
            state, epoch = "free", 0
        else:
            epoch = int(row[0])
            state = f"held by a daemon (expires in {row[2]:.0f}s)" if row[1] else "free"
        return (
            f"postgres lock {self.config.name!r}: reachable, {state}, epoch {epoch}, "
            f"ttl {self.config.ttl:g}s"
        )

    def close(self) -> None:
        self._drop()

    # -- helpers --------------------------------------------------------------------------------

    def _has_lease_columns(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attname IN ('holder', 'expires_at') AND NOT attisdropped",
            (f"{self.config.schema}.leases",),
        ).fetchone()
        return row is not None and int(row[0]) == 2

    def _ensure_table(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema and table on first use, or add the lease columns to a table made by
        an earlier version. DDL runs only when needed: it needs CREATE rights."""
        if self._ready:
            return
        schema = sql.Identifier(self.config.schema)
        found = conn.execute("SELECT to_regclass(%s)", (f"{self.config.schema}.leases",)).fetchone()
        if found is None or found[0] is None:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY,"
                        " epoch bigint NOT NULL, holder text, expires_at timestamptz,"
                        " acquired_at timestamptz NOT NULL DEFAULT now())"
                    ).format(self._table)
                )
        elif not self._has_lease_columns(conn):
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS holder text,"
                    " ADD COLUMN IF NOT EXISTS expires_at timestamptz"
                ).format(self._table)
            )
        self._ready = True


def build(
    config: DaemonConfig, own: PostgresLockSettings | None = None, scope: str | None = None
) -> PostgresLock:
    return PostgresLock(parse(config, own, scope))


ADAPTER = LockAdapter(PostgresLockSettings, parse, build)
