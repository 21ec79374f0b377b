"""The sql source: an operator's query over a Que-style job table (``que_jobs`` with ``run_at``,
as Que 1.x/2.x lays it out), run read-only with a statement timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from autoscaler.ports import ConfigError, SourceError
from tests.helpers import Stopwatch
from tests.sources.pgjobs import closed_dsn, connect, make_source, ready_source, schema_url

pytestmark = pytest.mark.integration

AGE = (
    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(run_at)), 0),"
    " count(*),"
    " (SELECT count(*) FROM que_jobs WHERE started_at IS NOT NULL AND finished_at IS NULL)"
    " FROM que_jobs WHERE run_at <= now() AND started_at IS NULL AND finished_at IS NULL"
)
PER_QUEUE = (
    "SELECT queue, now() - min(run_at), count(*) FROM que_jobs"
    " WHERE run_at <= now() AND started_at IS NULL AND finished_at IS NULL GROUP BY queue"
)


@pytest.fixture(scope="module")
def db(schema: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(schema) as conn:
        conn.execute(
            "CREATE TABLE que_jobs (id bigserial PRIMARY KEY,"
            " queue text NOT NULL DEFAULT 'default',"
            " run_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz,"
            " finished_at timestamptz)"
        )
        yield conn


@pytest.fixture(autouse=True)
def empty(db: psycopg.Connection[Any]) -> None:
    db.execute("DELETE FROM que_jobs")


def sample(schema: str, query: str, **extra: str) -> Any:
    source = make_source("sql", schema_url(schema), sql=query, **extra)
    try:
        return source.sample(time.time())
    finally:
        source.close()


def test_the_querys_age_depth_and_busy(schema: str, db: Any) -> None:
    source = ready_source("sql", schema_url(schema), sql=AGE)
    since_insert = Stopwatch()
    db.execute("INSERT INTO que_jobs DEFAULT VALUES")
    db.execute("INSERT INTO que_jobs (started_at) VALUES (now())")
    db.execute("INSERT INTO que_jobs (run_at) VALUES (now() + interval '1 hour')")
    time.sleep(1.0)
    reading = source.sample(time.time())
    age = since_insert.upper()
    source.close()
    assert 1000 <= reading.value_ms <= age
    assert (reading.depth, reading.busy, reading.samples) == (1, 1, 1)


def test_empty_is_zero_through_coalesce(schema: str, db: Any) -> None:
    assert sample(schema, AGE).value_ms == 0.0


def test_a_past_due_job_counts_from_its_due_time(schema: str, db: Any) -> None:
    source = ready_source("sql", schema_url(schema), sql=AGE)
    since_insert = Stopwatch()
    db.execute("INSERT INTO que_jobs (run_at) VALUES (now() + interval '1 second')")
    time.sleep(2.0)
    reading = source.sample(time.time())
    age = since_insert.upper(after_ms=1000)  # due 1 s after it was written
    source.close()
    assert reading.value_ms is not None and 1000 <= reading.value_ms <= age


def test_per_queue_rows_with_interval_ages(schema: str, db: Any) -> None:
    since_default = Stopwatch()
    db.execute("INSERT INTO que_jobs (queue) VALUES ('default')")
    time.sleep(0.5)
    since_mail = Stopwatch()
    db.execute("INSERT INTO que_jobs (queue) VALUES ('mail')")
    reading = sample(schema, PER_QUEUE)
    default_age, mail_age = since_default.upper(), since_mail.upper()
    assert set(reading.queues) == {"default", "mail"}
    assert 500 <= reading.value_ms <= default_age  # the oldest queue's
    assert 0 <= reading.queues["mail"] <= mail_age
    assert reading.depth == 2


def test_a_null_age_fails(schema: str, db: Any) -> None:
    with pytest.raises(SourceError, match=r"AUTOSCALER_WORKER_SQL: the query: the age is NULL"):
        sample(schema, "SELECT EXTRACT(EPOCH FROM now() - min(run_at)) FROM que_jobs")


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("SELECT 'NaN'::float8", "not a finite number"),
        ("SELECT 'Infinity'::float8", "not a finite number"),
        ("SELECT -4.5", "negative"),
        ("SELECT true", "not a number"),
        ("SELECT 1.5 FROM generate_series(1, 2)", "returned 2 rows"),
        ("SELECT 1 WHERE false", "returned 0 rows"),
        ("SELECT 1, 2, 3, 4", "returned 4 column"),
        ("SELECT 'q', 'abc'", "not a number"),
        ("SELECT 3, 1.5", "depth is not a whole number"),
        ("SELECT NULL::text, 3", "queue name is NULL"),
    ],
)
def test_results_it_cannot_trust_fail(schema: str, db: Any, query: str, why: str) -> None:
    with pytest.raises(SourceError, match=why):
        sample(schema, query)


def test_the_query_runs_read_only(schema: str, db: Any) -> None:
    with pytest.raises(SourceError, match="read-only transaction"):
        sample(schema, "WITH d AS (DELETE FROM que_jobs RETURNING 1) SELECT count(*) FROM d")


def test_a_second_statement_is_refused(schema: str, db: Any) -> None:
    with pytest.raises(SourceError, match="multiple commands"):
        sample(schema, "SELECT 1; SELECT 2")


def test_the_query_is_bounded_by_the_timeout(schema: str, db: Any) -> None:
    with pytest.raises(SourceError, match=r"longer than 0\.2s"):
        sample(schema, "SELECT 1 FROM pg_sleep(2)", sql_timeout="200ms")


def test_percent_signs_are_plain_sql(schema: str, db: Any) -> None:
    db.execute("INSERT INTO que_jobs (queue) VALUES ('mail%')")
    query = "SELECT count(*) * 0 FROM que_jobs WHERE queue LIKE 'mail%'"
    assert sample(schema, query).value_ms == 0.0


def test_unreachable_database_fails_and_is_not_zero() -> None:
    source = make_source("sql", closed_dsn(), sql="SELECT 0")
    with pytest.raises(SourceError, match=r"AUTOSCALER_WORKER_SQL: cannot read 127\.0\.0\.1"):
        source.sample(time.time())
    source.close()


def test_queues_are_rejected_with_sql() -> None:
    with pytest.raises(ConfigError, match="AUTOSCALER_WORKER_QUEUES"):
        make_source("sql", closed_dsn(), queues="a", sql="SELECT 0")
