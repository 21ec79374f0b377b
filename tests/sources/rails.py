"""Rows written the way GoodJob 4.19 and Solid Queue 1.5 write them, for apps whose Ruby code
we cannot run here. Each function names the Ruby method it reproduces. Rails writes
``timestamp(6)`` columns as UTC wall-clock times from the app's clock, as ``utcnow`` does.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from .pgjobs import LAYOUTS, connect


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def iso(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def active_job(job_class: str, queue: str, job_id: str, scheduled_at: datetime.datetime | None,
               now: datetime.datetime) -> dict[str, Any]:  # fmt: skip
    """``ActiveJob::Core#serialize`` (Rails 7.2/8.0)."""
    return {
        "job_class": job_class,
        "job_id": job_id,
        "provider_job_id": None,
        "queue_name": queue,
        "priority": None,
        "arguments": [],
        "executions": 0,
        "exception_executions": {},
        "locale": "en",
        "timezone": "UTC",
        "enqueued_at": iso(now),
        "scheduled_at": iso(scheduled_at) if scheduled_at else None,
    }


def job_tables(layout: str, *tables: str) -> tuple[Any, Any]:
    """A test module's ``db`` fixture (``layout`` created in the module's schema, one connection
    for the module) and an autouse ``empty`` fixture that empties ``tables`` before each test:
    ``db, empty = job_tables("good_job_4.sql", "good_jobs")``."""

    @pytest.fixture(scope="module")
    def db(schema: str) -> Iterator[psycopg.Connection[Any]]:
        with connect(schema) as conn:
            create_layout(conn, layout)
            yield conn

    @pytest.fixture(autouse=True)
    def empty(db: psycopg.Connection[Any]) -> None:
        for table in tables:
            db.execute(f"DELETE FROM {table}")

    return db, empty


def create_layout(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute((LAYOUTS / name).read_text())  # type: ignore[arg-type]


# --- GoodJob 4.19 ---------------------------------------------------------------------------


def good_job_enqueue(conn: psycopg.Connection[Any], queue: str,
                     scheduled_at: datetime.datetime | None = None, *,
                     version: int = 4) -> str:  # fmt: skip
    """``GoodJob::Job.enqueue`` -> ``enqueue_args``: ``created_at = now``, ``scheduled_at`` the
    requested time or ``now``, priority 0, the serialized ActiveJob in ``serialized_params``.
    ``version=3``: GoodJob 3.99's ``BaseExecution.enqueue_args``, which sets ``scheduled_at``
    only for a scheduled job (NULL for one enqueued to run now)."""
    now = utcnow()
    job_id = str(uuid.uuid4())
    payload = active_job("ReportJob", queue, job_id, scheduled_at, now)
    due = scheduled_at if version == 3 else scheduled_at or now
    conn.execute(
        "INSERT INTO good_jobs (id, active_job_id, job_class, queue_name, priority,"
        " serialized_params, created_at, updated_at, scheduled_at)"
        " VALUES (%s, %s, %s, %s, 0, %s, %s, %s, %s)",
        (job_id, job_id, "ReportJob", queue, json.dumps(payload), now, now, due),
    )
    return job_id


def good_job_perform(conn: psycopg.Connection[Any], job_id: str, process_id: str, *,
                     version: int = 4) -> None:  # fmt: skip
    """``GoodJob::Job#perform`` before running the job: an execution row, then
    ``performed_at``, ``executions_count``, ``locked_by_id``/``locked_at``/``lock_type``
    (GoodJob 3.99 has no ``lock_type`` column on ``good_jobs``)."""
    now = utcnow()
    conn.execute(
        "INSERT INTO good_job_executions (active_job_id, job_class, queue_name, serialized_params,"
        " scheduled_at, created_at, updated_at, process_id)"
        " SELECT active_job_id, job_class, queue_name, serialized_params,"
        " COALESCE(scheduled_at, created_at), %s, %s, %s FROM good_jobs WHERE id = %s",
        (now, now, process_id, job_id),
    )
    lock_type = ", lock_type = 1" if version >= 4 else ""
    conn.execute(
        "UPDATE good_jobs SET performed_at = %s, executions_count = COALESCE(executions_count, 0)"  # type: ignore[arg-type]
        f" + 1, locked_by_id = %s, locked_at = %s{lock_type}, updated_at = %s WHERE id = %s",
        (now, process_id, now, now, job_id),
    )


def good_job_finish(conn: psycopg.Connection[Any], job_id: str) -> None:
    """``GoodJob::Job#perform`` after a successful run (with ``preserve_job_records``)."""
    now = utcnow()
    conn.execute(
        "UPDATE good_jobs SET finished_at = %s, locked_by_id = NULL, locked_at = NULL,"
        " lock_type = NULL, error = NULL, error_event = NULL, updated_at = %s WHERE id = %s",
        (now, now, job_id),
    )


# --- Solid Queue 1.5 ------------------------------------------------------------------------


def solid_queue_enqueue(conn: psycopg.Connection[Any], queue: str,
                        scheduled_at: datetime.datetime | None = None) -> int:  # fmt: skip
    """``SolidQueue::Job.enqueue`` (``scheduled_at`` defaults to now) then ``after_create
    :prepare_for_execution``: a due job gets a ready execution, a future one a scheduled
    execution; both copy queue_name and priority from the job (``assumes_attributes_from_job``).
    """
    now = utcnow()
    due_at = scheduled_at or now
    job_id = str(uuid.uuid4())
    arguments = json.dumps(active_job("ReportJob", queue, job_id, due_at, now))
    row = conn.execute(
        "INSERT INTO solid_queue_jobs (queue_name, class_name, arguments, priority, active_job_id,"
        " scheduled_at, created_at, updated_at) VALUES (%s, %s, %s, 0, %s, %s, %s, %s)"
        " RETURNING id",
        (queue, "ReportJob", arguments, job_id, due_at, now, now),
    ).fetchone()
    assert row is not None
    if due_at <= now:
        conn.execute(
            "INSERT INTO solid_queue_ready_executions (job_id, queue_name, priority, created_at)"
            " VALUES (%s, %s, 0, %s)",
            (row[0], queue, now),
        )
    else:
        conn.execute(
            "INSERT INTO solid_queue_scheduled_executions"
            " (job_id, queue_name, priority, scheduled_at, created_at) VALUES (%s, %s, 0, %s, %s)",
            (row[0], queue, due_at, now),
        )
    return int(row[0])


def solid_queue_dispatch_due(conn: psycopg.Connection[Any]) -> None:
    """``ScheduledExecution.dispatch_next_batch``: due scheduled executions become ready
    executions (created now) and their scheduled rows are deleted."""
    now = utcnow()
    conn.execute(
        "WITH due AS (DELETE FROM solid_queue_scheduled_executions WHERE scheduled_at <= %s"
        " RETURNING job_id, queue_name, priority)"
        " INSERT INTO solid_queue_ready_executions (job_id, queue_name, priority, created_at)"
        " SELECT job_id, queue_name, priority, %s FROM due",
        (now, now),
    )


def solid_queue_claim(conn: psycopg.Connection[Any], job_id: int, process_id: int) -> None:
    """``ReadyExecution.claim`` -> ``ClaimedExecution.claiming``: insert the claimed execution,
    delete the ready one."""
    conn.execute(
        "INSERT INTO solid_queue_claimed_executions (job_id, process_id, created_at)"
        " VALUES (%s, %s, %s)",
        (job_id, process_id, utcnow()),
    )
    conn.execute("DELETE FROM solid_queue_ready_executions WHERE job_id = %s", (job_id,))


def solid_queue_register_process(conn: psycopg.Connection[Any]) -> int:
    """``SolidQueue::Process.register`` for a worker."""
    now = utcnow()
    row = conn.execute(
        "INSERT INTO solid_queue_processes (kind, last_heartbeat_at, pid, hostname, metadata,"
        " created_at, name) VALUES ('Worker', %s, 4242, 'test', '{}', %s, %s) RETURNING id",
        (now, now, f"worker-{uuid.uuid4().hex[:20]}"),
    ).fetchone()
    assert row is not None
    return int(row[0])
