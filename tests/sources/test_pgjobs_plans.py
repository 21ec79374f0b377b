"""A probe's cost does not grow with a backlog: with 20,000 jobs waiting in one queue, enqueued
before a few jobs in 19 others (the case where an id- or time-ordered index walks the backlog),
EXPLAIN ANALYZE of one poll shows no sequential or bitmap scan of a job table and few job rows
read in all. Counts of rows, not timings, so the test is exact on any machine."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from .pgjobs import connect, make_source, schema_url
from .rails import create_layout

pytestmark = pytest.mark.integration

BACKLOG = 20_000
QUEUES = [f"q{i:02d}" for i in range(20)]
JOB_TABLES = {
    "procrastinate_jobs",
    "procrastinate_events",
    "good_jobs",
    "solid_queue_jobs",
    "solid_queue_ready_executions",
    "solid_queue_scheduled_executions",
}
BIG = "'q00'"
SMALL = "'q' || lpad((1 + mod(i, 19))::text, 2, '0')"  # 5 jobs in each of q01..q19


def load_procrastinate(conn: psycopg.Connection[Any]) -> None:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=conn.info.dsn))
    with app.open():
        app.schema_manager.apply_schema()
    for queue, n in ((BIG, BACKLOG), (SMALL, 95)):
        conn.execute(
            f"INSERT INTO procrastinate_jobs (queue_name, task_name, args)"  # type: ignore[arg-type]
            f" SELECT {queue}, 'noop', '{{}}' FROM generate_series(1, %s) i",
            (n,),
        )


def load_good_job(conn: psycopg.Connection[Any]) -> None:
    create_layout(conn, "good_job_4.sql")
    for queue, n, older in ((BIG, BACKLOG, 3600), (SMALL, 95, 60)):
        conn.execute(
            "INSERT INTO good_jobs (active_job_id, job_class, queue_name, priority,"  # type: ignore[arg-type]
            " serialized_params, created_at, updated_at, scheduled_at)"
            f" SELECT gen_random_uuid(), 'ReportJob', {queue}, 0, '{{}}', t, t, t FROM"
            " (SELECT i, (now() AT TIME ZONE 'UTC') - make_interval(secs => %s - i / 1000.0) t"
            " FROM generate_series(1, %s) i) s",
            (older, n),
        )


def load_solid_queue(conn: psycopg.Connection[Any]) -> None:
    create_layout(conn, "solid_queue_1.sql")
    for queue, n in ((BIG, BACKLOG), (SMALL, 95)):
        conn.execute(
            "INSERT INTO solid_queue_jobs (queue_name, class_name, arguments, scheduled_at,"  # type: ignore[arg-type]
            " created_at, updated_at)"
            f" SELECT {queue}, 'ReportJob', '{{}}', t, t, t FROM"
            " (SELECT i, now() AT TIME ZONE 'UTC' t FROM generate_series(1, %s) i) s",
            (n,),
        )
    conn.execute(
        "INSERT INTO solid_queue_ready_executions (job_id, queue_name, priority, created_at)"
        " SELECT id, queue_name, priority, created_at FROM solid_queue_jobs ORDER BY id"
    )


LOADERS = {
    "procrastinate": load_procrastinate,
    "good_job": load_good_job,
    "solid_queue": load_solid_queue,
}


@pytest.fixture(scope="module", params=sorted(LOADERS))
def backlog(request: pytest.FixtureRequest, schema: str) -> Iterator[tuple[str, str]]:
    """(source, schema) with the skewed backlog loaded, in a schema of its own."""
    name = f"{schema}_{request.param}"
    with connect(schema) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        with psycopg.connect(schema_url(name), autocommit=True) as conn:
            LOADERS[request.param](conn)
            conn.execute("ANALYZE")
        yield request.param, name
    finally:
        with connect(schema) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def job_rows_read(node: dict[str, Any]) -> tuple[int, list[str]]:
    """Rows read from job tables over the plan (kept or filtered out), and the scan kinds."""
    total, kinds = 0, []
    if node.get("Relation Name") in JOB_TABLES:
        loops = int(node.get("Actual Loops", 1))
        kept = int(node.get("Actual Rows", 0))
        removed = int(node.get("Rows Removed by Filter", 0))
        total += (kept + removed) * loops
        kinds.append(node["Node Type"])
    for child in node.get("Plans", []):
        n, k = job_rows_read(child)
        total += n
        kinds += k
    return total, kinds


def test_one_poll_reads_few_rows_whatever_the_backlog(backlog: tuple[str, str]) -> None:
    source_name, schema = backlog
    source = make_source(source_name, schema_url(schema), ",".join(QUEUES))
    reading = source.sample(time.time())
    statement = source.statement  # type: ignore[attr-defined]
    params = source.params  # type: ignore[attr-defined]
    source.close()
    assert reading.queues["q00"] > 0 and reading.queues["q19"] > 0
    assert reading.depth == 100 + 19 * 5  # q00 counted up to the cap

    with psycopg.connect(schema_url(schema), autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # what each poll's transaction sets
        conn.execute("SET LOCAL enable_bitmapscan = off")
        conn.execute("SET LOCAL enable_sort = off")
        conn.execute("SET LOCAL enable_incremental_sort = off")
        conn.execute("SET LOCAL jit = off")
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        text = statement.as_string(conn)
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + text, params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    rows, kinds = job_rows_read(plan[0]["Plan"])
    assert not {"Seq Scan", "Bitmap Heap Scan"} & set(kinds), kinds
    assert rows < BACKLOG / 4, f"{rows} job rows read for a backlog of {BACKLOG}"
