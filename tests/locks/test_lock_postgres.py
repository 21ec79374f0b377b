"""The PostgreSQL lease (a row with a token, an epoch and an expiry) against the real PostgreSQL:
scenarios 38, 39, 41, 42, 43, and a frozen leader (issue 14 item 12)."""

from __future__ import annotations

import time

import psycopg
import pytest

from autoscaler.config import load
from autoscaler.locks.common import LockUnavailable
from autoscaler.locks.postgres import PostgresLock, PostgresLockConfig, build, parse
from autoscaler.ports import ConfigError
from tests.helpers import DATABASE_URL, TcpProxy

pytestmark = pytest.mark.integration

TTL = 1.5


def make(name: str, url: str = DATABASE_URL, ttl: float = TTL, **kw: object) -> PostgresLock:
    return PostgresLock(PostgresLockConfig(url=url, name=name, schema=name, ttl=ttl), **kw)  # type: ignore[arg-type]


def row(name: str) -> tuple[int, str | None, bool] | None:
    """(epoch, holder, live) of the lease row."""
    with psycopg.connect(DATABASE_URL) as conn:
        found = conn.execute(
            f"SELECT epoch, holder, expires_at > now() FROM {name}.leases WHERE name = %s",
            (name,),
        ).fetchone()
    return None if found is None else (int(found[0]), found[1], bool(found[2]))


def test_parse_reads_the_schema_and_a_direct_url_override() -> None:
    settings = load(
        {
            "AUTOSCALER_LOCK": "postgres",
            "DATABASE_URL": "postgresql://u:pw-pooled@pooler:6543/app",
            "AUTOSCALER_LOCK_URL": "postgresql://u:pw-direct@db:5432/app",
            "AUTOSCALER_LOCK_SCHEMA": "ops_locks",
            "AUTOSCALER_LOCK_TTL": "20s",
        }
    )
    config = parse(settings)
    assert (config.url, config.schema) == ("postgresql://u:pw-direct@db:5432/app", "ops_locks")
    assert (config.ttl, config.margin) == (20.0, 20.0 / 3)


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"AUTOSCALER_LOCK": "postgres"}, "DATABASE_URL"),
        (
            {"DATABASE_URL": DATABASE_URL, "AUTOSCALER_LOCK_SCHEMA": "x; drop"},
            "AUTOSCALER_LOCK_SCHEMA",
        ),
        ({"DATABASE_URL": DATABASE_URL, "AUTOSCALER_LOCK_NAME": "a b"}, "AUTOSCALER_LOCK_NAME"),
        ({"DATABASE_URL": DATABASE_URL, "AUTOSCALER_LOCK_TTL": "5s"}, "AUTOSCALER_LOCK_TTL"),
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
        renewed = a.acquire()  # a renewal keeps the epoch
        assert renewed is not None and renewed.epoch == lease.epoch and a.valid(renewed)
        assert b.acquire() is None
        assert row(pg_schema) == (lease.epoch, lease.token, True)
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


def test_a_leader_that_stops_renewing_is_replaced_after_the_ttl(pg_schema: str) -> None:
    leader, follower = make(pg_schema), make(pg_schema)
    try:
        lease = leader.acquire()
        assert lease is not None
        assert follower.acquire() is None
        time.sleep(TTL + 0.2)  # the leader is stuck: no renewal
        assert not leader.valid(lease)  # checked right before a write: the write is blocked
        new = follower.acquire()
        assert new is not None and new.epoch == lease.epoch + 1
        assert leader.acquire() is None  # the old leader comes back as a follower
    finally:
        leader.close()
        follower.close()


def test_a_frozen_leader_whose_own_clock_did_not_move_still_writes_nothing(
    pg_schema: str,
) -> None:
    """A hung VM: the leader's monotonic clock stood still while the server's time passed."""
    frozen = [1000.0]
    leader, follower = make(pg_schema, monotonic=lambda: frozen[0]), make(pg_schema)
    try:
        lease = leader.acquire()
        assert lease is not None and leader.valid(lease)
        time.sleep(TTL + 0.2)
        assert follower.acquire() is not None  # the server saw the lease expire
        assert not leader.valid(lease)  # its own deadline has not passed; the row says no
    finally:
        leader.close()
        follower.close()


def test_the_lease_is_not_trusted_within_the_margin_of_its_expiry(pg_schema: str) -> None:
    now = [1000.0]
    lock = make(pg_schema, monotonic=lambda: now[0])
    try:
        lease = lock.acquire()
        assert lease is not None
        now[0] += TTL * 2 / 3 - 0.05
        assert lock.valid(lease)
        now[0] += 0.1  # past the last two thirds of the TTL on the local clock
        assert not lock.valid(lease)
    finally:
        lock.close()


def test_a_bumped_epoch_fences_off_the_old_holder(pg_schema: str) -> None:
    lock = make(pg_schema, ttl=30.0)
    try:
        lease = lock.acquire()
        assert lease is not None
        with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
            admin.execute(f"UPDATE {pg_schema}.leases SET epoch = epoch + 1")
        assert not lock.valid(lease)
    finally:
        lock.close()


def test_a_foreign_release_does_not_free_the_lock(pg_schema: str) -> None:
    owner, intruder = make(pg_schema), make(pg_schema)
    try:
        lease = owner.acquire()
        assert lease is not None
        assert intruder.acquire() is None
        intruder.release(lease)  # not its lease: a no-op
        intruder._held = lease  # even with the object, the release names the intruder's token
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
        time.sleep(TTL + 0.2)
        assert follower.acquire() is not None  # the cut-off leader's lease expired
    finally:
        lock.close()
        follower.close()
        proxy.close()


def test_check_reports_the_state_without_taking_the_lock(pg_schema: str) -> None:
    a, b = make(pg_schema), make(pg_schema)
    try:
        assert "free" in b.check()
        assert a.acquire() is not None
        assert "held by a daemon" in b.check() and "epoch 1" in b.check()
        assert b.acquire() is None
    finally:
        a.close()
        b.close()


def test_no_session_state_is_needed_so_a_transaction_pooler_is_fine(pg_schema: str) -> None:
    """Through PgBouncer in transaction mode each statement may run on another server session:
    here every call gets a new session."""
    lock = make(pg_schema)
    try:
        lease = lock.acquire()
        assert lease is not None
        for _ in range(3):
            assert lock._conn is not None
            lock._conn.close()
            lock._conn = psycopg.connect(DATABASE_URL, autocommit=True)
            assert lock.valid(lease)
            renewed = lock.acquire()
            assert renewed is not None and renewed.epoch == lease.epoch
            lease = renewed
    finally:
        lock.close()


def test_a_table_made_by_the_advisory_lock_version_is_upgraded_in_place(pg_schema: str) -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {pg_schema}")
        admin.execute(
            f"CREATE TABLE {pg_schema}.leases (name text PRIMARY KEY, epoch bigint NOT NULL,"
            " acquired_at timestamptz NOT NULL DEFAULT now())"
        )
        admin.execute(f"INSERT INTO {pg_schema}.leases (name, epoch) VALUES (%s, 41)", (pg_schema,))
    lock = make(pg_schema)
    try:
        lease = lock.acquire()
        assert lease is not None and lease.epoch == 42 and lock.valid(lease)
    finally:
        lock.close()


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
    assert f"lock postgres: postgres lock {pg_schema!r}: reachable, free, epoch 0" in out


def test_a_role_without_create_rights_works_with_the_schema_the_readme_creates(
    pg_schema: str,
) -> None:
    role = pg_schema + "_role"
    readme_sql = f"""
        CREATE SCHEMA {pg_schema};
        CREATE TABLE {pg_schema}.leases (name text PRIMARY KEY, epoch bigint NOT NULL,
                                         holder text, expires_at timestamptz,
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
