"""The solid_queue source (what it shares with good_job: ``test_job_tables.py``) against
Solid Queue 1.5's tables (``layouts/solid_queue_1.sql``, from
its install schema) with rows written the way Solid Queue writes them (``rails.py``)."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from autoscaler.ports import SourceError
from tests.helpers import Stopwatch
from tests.sources.pgjobs import (
    a_started_job_is_busy_not_waiting,
    closed_dsn,
    make_source,
    ready_source,
    sample_once,
    schema_url,
)
from tests.sources.rails import (
    job_tables,
    solid_queue_claim,
    solid_queue_dispatch_due,
    solid_queue_enqueue,
    solid_queue_register_process,
    utcnow,
)

pytestmark = pytest.mark.integration


db, empty = job_tables("solid_queue_1.sql", "solid_queue_jobs", "solid_queue_pauses")


def sample(schema: str, queues: str | None = "default", **extra: str) -> Any:
    return sample_once("solid_queue", schema, queues, **extra)


def test_a_dispatched_job_counts_from_its_dispatch(schema: str, db: Any) -> None:
    source = ready_source("solid_queue", schema_url(schema), "default")
    solid_queue_enqueue(db, "default", scheduled_at=utcnow() + datetime.timedelta(seconds=0.5))
    since_enqueue = Stopwatch()  # the job came due at most 0.5 s after this
    time.sleep(1.0)
    since_dispatch = Stopwatch()
    solid_queue_dispatch_due(db)
    time.sleep(0.5)
    due_age = since_enqueue.lower(after_ms=500)  # at least 0.5 s older than the dispatch
    reading = source.sample(time.time())
    dispatch_age = since_dispatch.upper()
    source.close()
    assert 500 <= reading.value_ms <= dispatch_age  # ready since the dispatch, as Queue#latency
    assert reading.value_ms < due_age  # says, not since it came due
    assert reading.depth == 1


def test_a_claimed_job_leaves_the_latency_and_counts_as_busy(schema: str, db: Any) -> None:
    a_started_job_is_busy_not_waiting(
        "solid_queue",
        schema,
        lambda: solid_queue_enqueue(db, "default"),
        lambda job: solid_queue_claim(db, job, solid_queue_register_process(db)),
    )


def test_a_paused_queue_is_shown_but_not_counted(schema: str, db: Any) -> None:
    solid_queue_enqueue(db, "default")
    db.execute(
        "INSERT INTO solid_queue_pauses (queue_name, created_at) VALUES ('default', %s)",
        (utcnow(),),
    )
    time.sleep(0.3)
    reading = sample(schema, queues="default,other")
    assert reading.value_ms == 0.0
    assert reading.queues["default"] >= 300
    assert reading.warning is not None and "paused queue(s) not counted: default" in reading.warning


def test_missing_tables_fail_naming_the_queue(schema: str) -> None:
    with pytest.raises(SourceError, match="solid_queue queue default: unknown table layout"):
        sample("t_pgjobs_missing")


def test_a_process_database_url_overrides_database_url(schema: str, db: Any) -> None:
    solid_queue_enqueue(db, "default")
    source = make_source("solid_queue", closed_dsn(), "default", database_url=schema_url(schema))
    reading = source.sample(time.time())
    source.close()
    assert reading.depth == 1
