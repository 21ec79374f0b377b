"""What good_job and solid_queue have in common, tested once against each: both read a job
library's own tables (GoodJob 4.19's ``good_job_4.sql``, Solid Queue 1.5's
``solid_queue_1.sql``, both in one schema here) with rows written as the libraries write them
(``rails.py``). What differs between them is in ``test_good_job.py`` and
``test_solid_queue.py``."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from autoscaler.ports import SourceError
from tests.helpers import Stopwatch

from .pgjobs import closed_dsn, connect, make_source, ready_source, sample_once, schema_url
from .rails import create_layout, good_job_enqueue, solid_queue_enqueue, utcnow

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Backend:
    name: str
    enqueue: Callable[..., Any]
    tables: tuple[str, ...]  # emptied before each test


BACKENDS = {
    "good_job": Backend("good_job", good_job_enqueue, ("good_jobs",)),
    "solid_queue": Backend(
        "solid_queue", solid_queue_enqueue, ("solid_queue_jobs", "solid_queue_pauses")
    ),
}


@pytest.fixture(scope="module")
def db(schema: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(schema) as conn:
        create_layout(conn, "good_job_4.sql")
        create_layout(conn, "solid_queue_1.sql")
        yield conn


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, db: psycopg.Connection[Any]) -> Backend:
    chosen = BACKENDS[request.param]
    for table in chosen.tables:
        db.execute(f"DELETE FROM {table}")
    return chosen


def test_latency_is_the_age_of_the_oldest_due_job(schema: str, db: Any, backend: Backend) -> None:
    source = ready_source(backend.name, schema_url(schema))
    since_first = Stopwatch()
    backend.enqueue(db, "default")
    time.sleep(0.5)
    since_mailers = Stopwatch()
    backend.enqueue(db, "default")
    backend.enqueue(db, "mailers")
    time.sleep(0.5)
    reading = source.sample(time.time())
    first_age, mailers_age = since_first.upper(), since_mailers.upper()
    source.close()
    assert 1000 <= reading.value_ms <= first_age
    assert 500 <= reading.queues["mailers"] <= mailers_age
    assert reading.depth == 3
    assert reading.busy == 0


def test_empty_queue_is_zero(schema: str, db: Any, backend: Backend) -> None:
    reading = sample_once(backend.name, schema)
    assert (reading.value_ms, reading.depth, reading.queues) == (0.0, 0, {"default": 0.0})


def test_a_job_scheduled_in_the_future_does_not_count(
    schema: str, db: Any, backend: Backend
) -> None:
    backend.enqueue(db, "default", scheduled_at=utcnow() + datetime.timedelta(hours=1))
    reading = sample_once(backend.name, schema)
    assert (reading.value_ms, reading.depth) == (0.0, 0)


def test_a_past_due_scheduled_job_counts_from_its_due_time(
    schema: str, db: Any, backend: Backend
) -> None:
    source = ready_source(backend.name, schema_url(schema), "default")
    since_enqueue = Stopwatch()
    backend.enqueue(db, "default", scheduled_at=utcnow() + datetime.timedelta(seconds=1))
    time.sleep(2.0)  # solid_queue: the dispatcher is late, the job is still a scheduled one
    reading = source.sample(time.time())
    due_age = since_enqueue.upper(after_ms=1000)  # due 1 s after it was enqueued
    source.close()
    assert 1000 <= reading.value_ms <= due_age  # from the due time, not the enqueue 2 s ago
    assert reading.depth == 1


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_unreachable_database_fails_and_is_not_zero(name: str) -> None:
    source = make_source(name, closed_dsn(), "default")
    with pytest.raises(SourceError, match=f"{name} queue default: cannot read"):
        source.sample(time.time())
    source.close()
