"""The procrastinate source against jobs deferred by the real procrastinate library, whose own
schema (``procrastinate/sql/schema.sql``, applied by ``SchemaManager.apply_schema``) lives in
this module's schema, and a real procrastinate worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import procrastinate
import pytest

from autoscaler.model import Metric
from autoscaler.ports import SourceError
from tests.helpers import Stopwatch
from tests.sources.pgjobs import closed_dsn, connect, make_source, ready_source, schema_url

pytestmark = pytest.mark.integration

started = threading.Event()
release = threading.Event()


def make_app(url: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=url))

    @app.task(name="noop")
    def noop(**kwargs: Any) -> None:
        pass

    @app.task(name="flaky", retry=procrastinate.RetryStrategy(max_attempts=2, wait=1))
    def flaky() -> None:
        raise RuntimeError("fails once, retried 1 s later")

    @app.task(name="block")
    def block() -> None:
        started.set()
        release.wait(20)

    return app


@pytest.fixture(scope="module")
def app(schema: str) -> Iterator[procrastinate.App]:
    app = make_app(schema_url(schema))
    with app.open():
        app.schema_manager.apply_schema()
        yield app


@pytest.fixture(autouse=True)
def empty(schema: str, app: procrastinate.App) -> None:
    with connect(schema) as conn:
        conn.execute("DELETE FROM procrastinate_jobs")


def run_worker(app: procrastinate.App, schema: str, queue: str) -> None:
    """A real procrastinate worker on ``queue`` until the queue has no due job left."""
    worker_app = app.with_connector(procrastinate.PsycopgConnector(conninfo=schema_url(schema)))
    worker_app.run_worker(
        queues=[queue], wait=False, install_signal_handlers=False, listen_notify=False
    )


def defer(app: procrastinate.App, queue: str, **options: Any) -> int:
    return int(app.tasks["noop"].configure(queue=queue, **options).defer())


def test_latency_is_the_age_of_the_oldest_due_job(schema: str, app: procrastinate.App) -> None:
    source = ready_source("procrastinate", schema_url(schema))
    since_first = Stopwatch()
    defer(app, "default")
    time.sleep(0.5)
    since_mail = Stopwatch()
    defer(app, "default")
    defer(app, "mail")
    time.sleep(0.5)
    reading = source.sample(time.time())
    first_age, mail_age = since_first.upper(), since_mail.upper()
    source.close()
    assert reading.metric is Metric.JOB_LATENCY
    assert 1000 <= reading.value_ms <= first_age  # type: ignore[operator]
    assert set(reading.queues) == {"default", "mail"}
    assert 500 <= reading.queues["mail"] <= mail_age
    assert reading.depth == reading.samples == 3
    assert reading.busy == 0


def test_empty_queue_is_zero(schema: str, app: procrastinate.App) -> None:
    source = make_source("procrastinate", schema_url(schema), queues="default")
    reading = source.sample(time.time())
    source.close()
    assert reading.value_ms == 0.0
    assert reading.queues == {"default": 0.0}
    assert reading.depth == 0


def test_a_job_scheduled_in_the_future_does_not_count(schema: str, app: procrastinate.App) -> None:
    defer(app, "default", schedule_in={"hours": 1})
    time.sleep(0.3)
    source = make_source("procrastinate", schema_url(schema), queues="default")
    reading = source.sample(time.time())
    source.close()
    assert reading.value_ms == 0.0
    assert reading.depth == 0


def test_a_past_due_scheduled_job_counts_from_its_due_time(
    schema: str, app: procrastinate.App
) -> None:
    source = ready_source("procrastinate", schema_url(schema), queues="default")
    since_defer = Stopwatch()
    defer(app, "default", schedule_in={"seconds": 1})
    time.sleep(2.0)
    reading = source.sample(time.time())
    due_age = since_defer.upper(after_ms=1000)  # due 1 s after it was deferred
    source.close()
    assert 1000 <= reading.value_ms <= due_age  # type: ignore[operator]  # from the due time
    assert reading.depth == 1


def test_a_job_taken_by_a_real_worker_leaves_the_latency(
    schema: str, app: procrastinate.App
) -> None:
    started.clear()
    release.clear()
    app.tasks["block"].configure(queue="work").defer()
    since_running = Stopwatch()
    time.sleep(0.3)
    worker_app = app.with_connector(procrastinate.PsycopgConnector(conninfo=schema_url(schema)))
    worker = threading.Thread(
        target=worker_app.run_worker,
        kwargs={"queues": ["work"], "wait": False, "install_signal_handlers": False,
                "listen_notify": False, "fetch_job_polling_interval": 0.1},
    )  # fmt: skip
    worker.start()
    try:
        assert started.wait(15), "the procrastinate worker did not start the job"
        source = ready_source("procrastinate", schema_url(schema), queues="work")
        since_waiting = Stopwatch()
        defer(app, "work")
        time.sleep(0.5)
        running_age = since_running.lower()  # at least 0.3 s older than the waiting job
        reading = source.sample(time.time())
        waiting_age = since_waiting.upper()
        source.close()
    finally:
        release.set()
        worker.join(20)
    assert reading.busy == 1
    assert reading.depth == 1  # the second job, waiting
    assert 500 <= reading.value_ms <= waiting_age  # type: ignore[operator]  # the waiting one's,
    assert reading.value_ms < running_age  # type: ignore[operator]  # not the running one's


def test_a_retried_job_counts_from_its_retry_time(schema: str, app: procrastinate.App) -> None:
    source = ready_source("procrastinate", schema_url(schema), queues="retry")
    app.tasks["flaky"].configure(queue="retry").defer()
    time.sleep(1.0)  # waiting 1 s before its first run
    run_worker(app, schema, "retry")  # fails: back to todo, due 1 s later (deferred_for_retry)
    time.sleep(2.0)
    since_reading = Stopwatch()
    reading = source.sample(time.time())
    source.close()
    with connect(schema) as conn:
        row = conn.execute(
            "SELECT EXTRACT(EPOCH FROM now() - scheduled_at)::float8 * 1000,"
            " EXTRACT(EPOCH FROM now() - (SELECT min(at) FROM procrastinate_events e"
            "   WHERE e.job_id = j.id))::float8 * 1000"
            " FROM procrastinate_jobs j WHERE queue_name = 'retry' AND attempts = 1"
        ).fetchone()
    between = since_reading.upper()  # the most the reading can precede the query's now()
    assert row is not None
    since_retry_due, since_enqueue = row
    assert reading.depth == 1
    assert since_enqueue > since_retry_due + 2000  # the two clocks differ enough to tell
    assert reading.value_ms is not None
    assert since_retry_due - between <= reading.value_ms <= since_retry_due


def test_a_job_behind_a_running_jobs_lock_does_not_count(
    schema: str, app: procrastinate.App
) -> None:
    first = defer(app, "default", lock="customer-1")
    defer(app, "default", lock="customer-1")
    with connect(schema) as conn:  # what procrastinate_fetch_job_v2 does to the first one
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (first,))
    time.sleep(0.3)
    source = make_source("procrastinate", schema_url(schema), queues="default")
    reading = source.sample(time.time())
    source.close()
    assert reading.value_ms == 0.0
    assert reading.depth == 1


def test_discovery_is_capped_and_alphabetical(schema: str, app: procrastinate.App) -> None:
    for queue in ("c", "a", "d", "b"):
        defer(app, queue)
    source = make_source("procrastinate", schema_url(schema), queue_discovery_limit="2")
    reading = source.sample(time.time())
    source.close()
    assert set(reading.queues) == {"a", "b"}
    assert reading.warning is not None and "more than 2 queues" in reading.warning


def test_a_job_without_its_deferred_event_fails(schema: str, app: procrastinate.App) -> None:
    job = defer(app, "default")
    with connect(schema) as conn:
        conn.execute("DELETE FROM procrastinate_events WHERE job_id = %s", (job,))
    source = make_source("procrastinate", schema_url(schema), queues="default")
    with pytest.raises(SourceError, match="queue default: 1 due job"):
        source.sample(time.time())
    source.close()


def test_unknown_layout_fails_naming_the_queue(schema: str) -> None:
    source = make_source("procrastinate", schema_url("t_pgjobs_missing"), queues="default")
    with pytest.raises(SourceError, match=r"procrastinate queue default: unknown table layout"):
        source.sample(time.time())
    source.close()


def test_unreachable_database_fails_and_is_not_zero() -> None:
    source = make_source("procrastinate", closed_dsn(), queues="default")
    with pytest.raises(SourceError, match=r"queue default: cannot read 127\.0\.0\.1:\d+/test"):
        source.sample(time.time())
    source.close()


def test_the_poll_is_read_only(schema: str) -> None:
    source = make_source("procrastinate", schema_url(schema))
    client = source.client  # type: ignore[attr-defined]
    with pytest.raises(SourceError, match="read-only transaction"):
        client.query("DELETE FROM procrastinate_jobs", None, "test")
    source.close()


def test_check_suggests_the_index_until_it_exists(schema: str, app: procrastinate.App) -> None:
    from autoscaler.sources.procrastinate import SUGGESTED_INDEX

    source = make_source("procrastinate", schema_url(schema), queues="default")
    assert "add: CREATE INDEX CONCURRENTLY" in source.check()
    with connect(schema) as conn:
        conn.execute(SUGGESTED_INDEX)
    try:
        line = source.check()
        assert "procrastinate on 127.0.0.1:5432/test: 1 queue(s)" in line
        assert "CREATE INDEX" not in line
    finally:
        with connect(schema) as conn:
            conn.execute("DROP INDEX procrastinate_jobs_todo_queue_id")
        source.close()
