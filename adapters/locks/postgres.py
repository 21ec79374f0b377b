"""Leader election with a PostgreSQL session advisory lock on a dedicated connection.

- ``pg_try_advisory_lock(key)`` (never blocks) on an autocommit connection used for nothing
  else. ``key`` is a 64-bit hash of the lock name. A dead daemon's session ends and PostgreSQL
  frees its lock; there is no TTL to tune. TCP keepalives on both ends (5 s idle, 2 s apart, 3
  probes) bound how long a daemon cut off by the network keeps the lock on the server.
- On each acquisition the holder bumps ``epoch`` in ``<schema>.leases`` (schema
  ``autoscaler_lock`` by default, created on first use; ``AUTOSCALER_LOCK_SCHEMA``) and stores a
  random token in a session variable.
- ``valid()`` and a renewing ``acquire()`` run one query on that connection that proves, at that
  moment, that the session is alive, that *this backend* holds the advisory lock, that the
  session still carries our token and that nobody has bumped the epoch since. Any error closes
  the connection (which frees the lock server-side) and drops the lease.
- Session advisory locks do not work through a transaction pooler (PgBouncer
  ``pool_mode=transaction``, the "pooled" URLs of hosted databases): the next transaction may run
  on another server session. On connecting, a probe sets a session variable and reads it back,
  with ``pg_backend_pid()``, in three separate transactions; if either changes, the lock refuses
  the connection with ``LockUnavailable`` asking for a direct URL in ``AUTOSCALER_LOCK_URL``.

Config: ``AUTOSCALER_LOCK_URL`` (else ``DATABASE_URL``), ``AUTOSCALER_LOCK_NAME``,
``AUTOSCALER_LOCK_SCHEMA``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field

from autoscaler.configkit import DaemonConfig, LockAdapter, Matches, read
from autoscaler.locks.common import Held, LockSettings, LockUnavailable, lock_where
from autoscaler.redact import redact

_SCHEMA = r"^[a-z_][a-z0-9_]{0,62}$"


_TOKEN_VAR = "autoscaler.lease_token"
_PROBE_VAR = "autoscaler.session_probe"
POOLER_HINT = (
    "the connection does not keep its session between transactions: it goes through a "
    "transaction pooler (e.g. PgBouncer pool_mode=transaction). A session advisory lock is not "
    "safe there; set AUTOSCALER_LOCK_URL to a direct (or session-pooled) database URL"
)


@dataclass(frozen=True, slots=True)
class PostgresLockConfig:
    url: str
    name: str
    schema: str = "autoscaler_lock"

    @property
    def key(self) -> int:
        """The advisory lock key: a signed 64-bit hash of the name."""
        digest = hashlib.blake2b(self.name.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)


class PostgresLockSettings(LockSettings):
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
    return PostgresLockConfig(url=url, name=name, schema=own.schema_name)


class PostgresLock:
    def __init__(self, config: PostgresLockConfig) -> None:
        self.config = config
        self._conn: psycopg.Connection[Any] | None = None
        self._held: Held | None = None
        self._table = sql.Identifier(config.schema, "leases")

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(
                self.config.url,
                autocommit=True,
                connect_timeout=5,
                application_name="autoscaler-lock",
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=10_000,
            )
        except psycopg.Error as exc:
            raise self._error(exc) from None
        try:
            probe_session(conn)
            conn.execute("SET statement_timeout = '5s'")
            # the server, too, notices a vanished daemon within seconds and frees its lock
            for setting, value in (("idle", 5), ("interval", 2), ("count", 3)):
                conn.execute(f"SET tcp_keepalives_{setting} = {value}")
        except psycopg.Error as exc:
            conn.close()
            raise self._error(exc) from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _error(self, exc: BaseException) -> LockUnavailable:
        return LockUnavailable(redact(f"postgres lock {self.config.name!r}: {exc}".strip()))

    def _drop(self) -> None:
        """Forget the lease and end the session, which frees the lock on the server."""
        self._held = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the Lock protocol ----------------------------------------------------------------------

    def acquire(self) -> Held | None:
        if self._held is not None:
            if self._still_held(self._held):
                return self._held
            self._drop()
        try:
            conn = self._connect()
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.config.key,)).fetchone()
            if not row or not row[0]:
                return None
            self._held = self._bump_epoch(conn)
        except psycopg.Error as exc:
            self._drop()
            raise self._error(exc) from None
        return self._held

    def valid(self, lease: object) -> bool:
        held = self._held
        if held is None or lease is not held:
            return False
        if self._still_held(held):
            return True
        self._drop()
        return False

    def release(self, lease: object) -> None:
        if self._held is None or lease is not self._held:
            return
        conn = self._conn
        self._held = None
        if conn is None or conn.closed:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.config.key,))
        except psycopg.Error as exc:
            self._drop()  # closing the session frees the lock anyway
            raise self._error(exc) from None

    def check(self) -> str:
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 1 AND classid = %s::oid AND objid = %s::oid)",
                _split(self.config.key),
            ).fetchone()
        except psycopg.Error as exc:
            self._drop()
            raise self._error(exc) from None
        state = "held by a daemon" if row and row[0] else "free"
        return f"postgres lock {self.config.name!r}: reachable, session kept, {state}"

    def close(self) -> None:
        self._drop()

    # -- helpers --------------------------------------------------------------------------------

    def _bump_epoch(self, conn: psycopg.Connection[Any]) -> Held:
        """Create the table if needed, add one to the epoch, tag the session. Runs only while we
        hold the advisory lock, so daemons sharing this name never race here."""
        token = secrets.token_hex(16)
        schema = sql.Identifier(self.config.schema)
        with conn.transaction():
            found = conn.execute(
                "SELECT to_regclass(%s)", (f"{self.config.schema}.leases",)
            ).fetchone()
            if found is None or found[0] is None:  # DDL only when needed: it needs CREATE rights
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY,"
                        " epoch bigint NOT NULL, acquired_at timestamptz NOT NULL DEFAULT now())"
                    ).format(self._table)
                )
            row = conn.execute(
                sql.SQL(
                    "INSERT INTO {t} (name, epoch) VALUES (%s, 1) ON CONFLICT (name) DO UPDATE"
                    " SET epoch = {t}.epoch + 1, acquired_at = now() RETURNING epoch"
                ).format(t=self._table),
                (self.config.name,),
            ).fetchone()
        conn.execute("SELECT set_config(%s, %s, false)", (_TOKEN_VAR, token))
        assert row is not None
        return Held(epoch=int(row[0]), token=token, deadline=float("inf"))

    def _still_held(self, held: Held) -> bool:
        conn = self._conn
        if conn is None or conn.closed:
            return False
        classid, objid = _split(self.config.key)
        query = sql.SQL(
            "SELECT current_setting(%s, true) = %s"
            " AND EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            "  AND pid = pg_backend_pid() AND objsubid = 1"
            "  AND classid = %s::oid AND objid = %s::oid)"
            " AND (SELECT epoch FROM {} WHERE name = %s) = %s"
        ).format(self._table)
        try:
            row = conn.execute(
                query, (_TOKEN_VAR, held.token, classid, objid, self.config.name, held.epoch)
            ).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])


def _split(key: int) -> tuple[int, int]:
    """A bigint advisory key as ``pg_locks`` shows it: high and low 32 bits, unsigned."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def probe_session(conn: Any) -> None:
    """Refuse a connection whose session does not survive between transactions.

    ``conn`` is an autocommit connection (anything with psycopg's ``execute``). Sets a session
    variable, then reads it back with the backend pid in three separate transactions.
    """
    marker = secrets.token_hex(8)
    first = conn.execute(
        "SELECT set_config(%s, %s, false), pg_backend_pid()", (_PROBE_VAR, marker)
    ).fetchone()
    for _ in range(3):
        row = conn.execute(
            "SELECT current_setting(%s, true), pg_backend_pid()", (_PROBE_VAR,)
        ).fetchone()
        if row is None or tuple(row) != (marker, first[1]):
            raise LockUnavailable(f"postgres lock: {POOLER_HINT}")


def build(
    config: DaemonConfig, own: PostgresLockSettings | None = None, scope: str | None = None
) -> PostgresLock:
    return PostgresLock(parse(config, own, scope))


ADAPTER = LockAdapter(PostgresLockSettings, parse, build)
