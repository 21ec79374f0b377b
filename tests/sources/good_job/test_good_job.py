"""The good_job source (what it shares with solid_queue: ``test_job_tables.py``) against
GoodJob 4.19's tables (``layouts/good_job_4.sql``, from its
install migration) with rows written the way GoodJob writes them (``rails.py``)."""

from __future__ import annotations

import datetime
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from autoscaler.ports import SourceError
from tests.helpers import Stopwatch
from tests.sources.pgjobs import (
    a_started_job_is_busy_not_waiting,
    connect,
    make_source,
    ready_source,
    sample_once,
    schema_url,
)
from tests.sources.rails import (
    create_layout,
    good_job_enqueue,
    good_job_finish,
    good_job_perform,
    job_tables,
    utcnow,
)

GOOD_JOB_3 = "t_pgjobs_good_job_399"

pytestmark = pytest.mark.integration


db, empty = job_tables("good_job_4.sql", "good_jobs")


def sample(schema: str, queues: str | None = "default", **extra: str) -> Any:
    return sample_once("good_job", schema, queues, **extra)


def test_a_running_job_leaves_the_latency_and_counts_as_busy(schema: str, db: Any) -> None:
    running = a_started_job_is_busy_not_waiting(
        "good_job",
        schema,
        lambda: good_job_enqueue(db, "default"),
        lambda job: good_job_perform(db, job, str(uuid.uuid4())),
    )
    good_job_finish(db, running)
    assert sample(schema).busy == 0


def test_a_finished_job_does_not_count(schema: str, db: Any) -> None:
    job = good_job_enqueue(db, "default")
    good_job_perform(db, job, str(uuid.uuid4()))
    good_job_finish(db, job)
    reading = sample(schema)
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


def test_an_older_layout_fails_naming_the_queue(schema: str, db: Any) -> None:
    with connect(schema) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS t_pgjobs_good_job_v3")
    try:
        with psycopg.connect(schema_url("t_pgjobs_good_job_v3"), autocommit=True) as conn:
            create_layout(conn, "good_job_4.sql")
            conn.execute("ALTER TABLE good_jobs DROP COLUMN locked_by_id")  # GoodJob 3.x
        with pytest.raises(SourceError, match="good_job queue default: unknown table layout") as e:
            sample("t_pgjobs_good_job_v3")
        assert "upgrade to 3.99" in str(e.value)
    finally:
        with connect(schema) as conn:
            conn.execute("DROP SCHEMA t_pgjobs_good_job_v3 CASCADE")


def test_a_query_over_the_timeout_fails(schema: str, db: Any) -> None:
    locked = threading.Event()
    done = threading.Event()

    def hold_lock() -> None:
        with connect(schema) as conn, conn.transaction():
            conn.execute("LOCK TABLE good_jobs IN ACCESS EXCLUSIVE MODE")
            locked.set()
            done.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5)
        with pytest.raises(
            SourceError, match=r"longer than 0\.3s \(AUTOSCALER_WORKER_SQL_TIMEOUT\)"
        ):
            sample(schema, sql_timeout="300ms")
    finally:
        done.set()
        holder.join(10)


def test_a_dropped_connection_fails_one_poll_then_reconnects(schema: str, db: Any) -> None:
    good_job_enqueue(db, "default")
    source = ready_source("good_job", schema_url(schema), "default")
    pid = source.client._conn.info.backend_pid  # type: ignore[attr-defined]
    db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)
    with pytest.raises(SourceError, match="good_job queue default: cannot read"):
        source.sample(time.time())
    assert source.sample(time.time()).depth == 1
    source.close()


# -- GoodJob 3.99: the same columns, but an immediate job has no scheduled_at -----------------


@pytest.fixture(scope="module")
def db3(schema: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(schema) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {GOOD_JOB_3} CASCADE")
        conn.execute(f"CREATE SCHEMA {GOOD_JOB_3}")
    try:
        with psycopg.connect(schema_url(GOOD_JOB_3), autocommit=True) as conn:
            create_layout(conn, "good_job_3.sql")
            yield conn
    finally:
        with connect(schema) as conn:
            conn.execute(f"DROP SCHEMA {GOOD_JOB_3} CASCADE")


@pytest.fixture
def empty3(db3: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    db3.execute("DELETE FROM good_jobs")
    return db3


def test_good_job_3_immediate_jobs_count_from_their_enqueue_time(empty3: Any) -> None:
    source = ready_source("good_job", schema_url(GOOD_JOB_3), "default,mailers")
    since_first = Stopwatch()
    first = good_job_enqueue(empty3, "default", version=3)
    time.sleep(0.5)
    since_mailers = Stopwatch()
    good_job_enqueue(empty3, "default", version=3)
    good_job_enqueue(empty3, "mailers", version=3)
    time.sleep(0.5)
    reading = source.sample(time.time())
    first_age, mailers_age = since_first.upper(), since_mailers.upper()
    source.close()
    row = empty3.execute("SELECT scheduled_at FROM good_jobs WHERE id = %s", (first,)).fetchone()
    assert row == (None,)  # what GoodJob 3.99 writes for a job enqueued to run now
    assert 1000 <= reading.value_ms <= first_age  # not an empty queue
    assert 500 <= reading.queues["mailers"] <= mailers_age
    assert reading.depth == 3


def test_good_job_3_mixes_immediate_and_past_due_scheduled_jobs(empty3: Any) -> None:
    source = ready_source("good_job", schema_url(GOOD_JOB_3), "default")
    since_start = Stopwatch()
    good_job_enqueue(empty3, "default", version=3)
    good_job_enqueue(empty3, "default", utcnow() - datetime.timedelta(seconds=5), version=3)
    good_job_enqueue(empty3, "default", utcnow() + datetime.timedelta(hours=1), version=3)
    reading = source.sample(time.time())
    past_due_age = since_start.upper(after_ms=-5000)  # due 5 s before it was written
    assert 5000 <= reading.value_ms <= past_due_age  # the past-due one is the oldest
    assert reading.depth == 2  # the future one does not count
    empty3.execute("DELETE FROM good_jobs WHERE scheduled_at IS NOT NULL")
    time.sleep(0.3)
    reading = source.sample(time.time())
    immediate_age = since_start.upper()
    source.close()
    assert 300 <= reading.value_ms <= immediate_age  # the immediate one alone, from created_at
    assert reading.depth == 1


def test_good_job_3_running_and_discovered(empty3: Any) -> None:
    running = good_job_enqueue(empty3, "default", version=3)
    good_job_enqueue(empty3, "default", version=3)
    good_job_enqueue(empty3, "low", version=3)
    good_job_perform(empty3, running, str(uuid.uuid4()), version=3)
    source = make_source("good_job", schema_url(GOOD_JOB_3), None)  # discover the queues
    reading = source.sample(time.time())
    source.close()
    assert sorted(reading.queues) == ["default", "low"]
    assert (reading.depth, reading.busy) == (2, 1)


def test_good_job_3_depth_is_capped_across_both_kinds(empty3: Any) -> None:
    from autoscaler.sources._pgjobs import DEPTH_CAP

    for version in (3, 4):  # 4: scheduled_at set to now, as for a due scheduled job
        empty3.execute(
            "INSERT INTO good_jobs (active_job_id, queue_name, priority, created_at, updated_at,"
            " scheduled_at) SELECT gen_random_uuid(), 'default', 0, t, t,"
            " CASE WHEN %s = 4 THEN t END FROM (SELECT now() AT TIME ZONE 'UTC' t,"
            " generate_series(1, %s)) s",
            (version, DEPTH_CAP),
        )
    reading = sample(GOOD_JOB_3)
    assert reading.depth == DEPTH_CAP
    assert reading.warning is not None and "counted up to" in reading.warning
