"""The PostgreSQL advisory lock against the real PostgreSQL: scenarios 38, 39, 41, 42, 43."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from autoscaler.config import load
from autoscaler.locks.common import LockUnavailable
from autoscaler.locks.postgres import (
    PostgresLock,
    PostgresLockConfig,
    build,
    parse,
    probe_session,
)
from autoscaler.ports import ConfigError

from .helpers import DATABASE_URL, TcpProxy

pytestmark = pytest.mark.integration


def make(name: str, url: str = DATABASE_URL) -> PostgresLock:
    return PostgresLock(PostgresLockConfig(url=url, name=name, schema=name))


def holder_pid(name: str) -> int | None:
    classid, objid = divmod(PostgresLockConfig(DATABASE_URL, name).key & (2**64 - 1), 2**32)
    with psycopg.connect(DATABASE_URL) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND classid = %s::oid AND objid = %s::oid",
            (classid, objid),
        ).fetchone()
    return None if row is None else int(row[0])


def test_parse_reads_the_schema_and_a_direct_url_override() -> None:
    settings = load(
        {
            "AUTOSCALER_LOCK": "postgres",
            "DATABASE_URL": "postgresql://u:pw-pooled@pooler:6543/app",
            "AUTOSCALER_LOCK_URL": "postgresql://u:pw-direct@db:5432/app",
            "AUTOSCALER_LOCK_SCHEMA": "ops_locks",
        }
    )
    config = parse(settings)
    assert (config.url, config.schema) == ("postgresql://u:pw-direct@db:5432/app", "ops_locks")


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"AUTOSCALER_LOCK": "postgres"}, "DATABASE_URL"),
        (
            {"DATABASE_URL": DATABASE_URL, "AUTOSCALER_LOCK_SCHEMA": "x; drop"},
            "AUTOSCALER_LOCK_SCHEMA",
        ),
        ({"DATABASE_URL": DATABASE_URL, "AUTOSCALER_LOCK_NAME": "a b"}, "AUTOSCALER_LOCK_NAME"),
    ],
)
def test_bad_lock_settings_name_their_variable(env: dict[str, str], var: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(load(env))
    assert set(err.value.problems) == {var}


def test_two_contenders_get_exactly_one_lease(pg_schema: str) -> None:
    a, b = make(pg_schema), make(pg_schema)
    try:
        lease = a.acquire()
        assert lease is not None and a.valid(lease)
        assert b.acquire() is None
        assert a.acquire() is lease  # renewal is a liveness check on the same session
        assert b.acquire() is None
        assert holder_pid(pg_schema) is not None
    finally:
        a.close()
        b.close()


def test_the_epoch_grows_on_each_acquisition(pg_schema: str) -> None:
    a, b = make(pg_schema), make(pg_schema)
    try:
        first = a.acquire()
        assert first is not None
        a.release(first)
        assert not a.valid(first)
        second = b.acquire()
        assert second is not None and second.epoch == first.epoch + 1
    finally:
        a.close()
        b.close()


def test_a_dead_session_loses_the_lease_and_the_follower_takes_over(pg_schema: str) -> None:
    leader, follower = make(pg_schema), make(pg_schema)
    try:
        lease = leader.acquire()
        assert lease is not None
        pid = holder_pid(pg_schema)
        with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert not leader.valid(lease)  # checked right before a write: the write is blocked
        new = follower.acquire()
        assert new is not None and new.epoch == lease.epoch + 1
        assert leader.acquire() is None
    finally:
        leader.close()
        follower.close()


def test_a_bumped_epoch_fences_off_the_old_holder(pg_schema: str) -> None:
    lock = make(pg_schema)
    try:
        lease = lock.acquire()
        assert lease is not None
        with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
            admin.execute(f"UPDATE {pg_schema}.leases SET epoch = epoch + 1")
        assert not lock.valid(lease)
        assert holder_pid(pg_schema) is None  # dropping the lease ended the session
    finally:
        lock.close()


def test_a_foreign_release_does_not_free_the_lock(pg_schema: str) -> None:
    owner, intruder = make(pg_schema), make(pg_schema)
    try:
        lease = owner.acquire()
        assert lease is not None
        assert intruder.acquire() is None  # intruder now has its own session
        intruder.release(lease)  # not its lease: a no-op
        intruder._held = lease  # even when it has the object, unlock runs on its own session
        intruder.release(lease)
        assert owner.valid(lease)
        assert intruder.acquire() is None
    finally:
        owner.close()
        intruder.close()


def test_an_unreachable_database_drops_the_lease_and_raises(pg_schema: str) -> None:
    proxy = TcpProxy(5432)
    lock = make(pg_schema, url=f"postgresql://postgres@127.0.0.1:{proxy.port}/test")
    follower = make(pg_schema)
    try:
        lease = lock.acquire()
        assert lease is not None
        proxy.cut()
        assert not lock.valid(lease)
        with pytest.raises(LockUnavailable, match=pg_schema):
            lock.acquire()
        assert follower.acquire() is not None  # the server freed the dead session's lock
    finally:
        lock.close()
        follower.close()
        proxy.close()


def test_check_reports_the_state_without_taking_the_lock(pg_schema: str) -> None:
    a, b = make(pg_schema), make(pg_schema)
    try:
        assert "free" in b.check()
        assert a.acquire() is not None
        assert "held" in b.check()
        assert b.acquire() is None
    finally:
        a.close()
        b.close()


class TransactionPooler:
    """What a client sees through PgBouncer in transaction mode: each transaction (here each
    autocommit statement) may run on another server session. Two real sessions, in turn."""

    def __init__(self) -> None:
        self.sessions = [psycopg.connect(DATABASE_URL, autocommit=True) for _ in range(2)]
        self.calls = 0

    def execute(self, query: str, params: Any = None) -> Any:
        session = self.sessions[self.calls % 2]
        self.calls += 1
        return session.execute(query, params)

    def close(self) -> None:
        for s in self.sessions:
            s.close()


def test_a_transaction_pooler_is_refused_with_a_clear_error() -> None:
    pooler = TransactionPooler()
    try:
        with pytest.raises(LockUnavailable, match="AUTOSCALER_LOCK_URL"):
            probe_session(pooler)
    finally:
        pooler.close()


def test_a_direct_session_passes_the_pooler_probe() -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        probe_session(conn)  # raises if the session were not kept
        row = conn.execute("SELECT current_setting('autoscaler.session_probe', true)").fetchone()
    assert row is not None and len(row[0]) == 16


def test_the_check_command_reaches_the_lock(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from autoscaler import cli

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "AUTOSCALER_LOCK": "postgres",
        "DATABASE_URL": DATABASE_URL,
        "AUTOSCALER_LOCK_NAME": pg_schema,
        "AUTOSCALER_LOCK_SCHEMA": pg_schema,
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"lock postgres: postgres lock {pg_schema!r}: reachable, session kept, free" in out


def test_a_role_without_create_rights_works_with_the_schema_the_readme_creates(
    pg_schema: str,
) -> None:
    role = pg_schema + "_role"
    readme_sql = f"""
        CREATE SCHEMA {pg_schema};
        CREATE TABLE {pg_schema}.leases (name text PRIMARY KEY, epoch bigint NOT NULL,
                                         acquired_at timestamptz NOT NULL DEFAULT now());
        GRANT USAGE ON SCHEMA {pg_schema} TO {role};
        GRANT SELECT, INSERT, UPDATE ON {pg_schema}.leases TO {role};
    """
    with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            row = admin.execute(
                "SELECT has_database_privilege(%s, 'test', 'CREATE')", (role,)
            ).fetchone()
            assert row == (False,)  # it may not create schemas
            admin.execute(readme_sql)
            lock = make(pg_schema, url=f"postgresql://{role}@127.0.0.1:5432/test")
            try:
                lease = lock.acquire()
                assert lease is not None and lease.epoch == 1 and lock.valid(lease)
            finally:
                lock.close()
        finally:
            admin.execute(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE")
            admin.execute(f"DROP ROLE {role}")
