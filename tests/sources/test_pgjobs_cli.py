"""``autoscaler sample --json`` over the PostgreSQL and HTTP job sources, configured only by
config vars, as an operator runs it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import procrastinate
import pytest

from autoscaler import cli
from tests.helpers import Stopwatch

from .http.hirefire import FakeHireFire, url_of
from .pgjobs import closed_dsn, connect, env_for, schema_url
from .rails import create_layout, good_job_enqueue, solid_queue_enqueue

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def apps(schema: str) -> Iterator[procrastinate.App]:
    """Every layout in one schema: procrastinate's (applied by procrastinate), GoodJob's, Solid
    Queue's and a Que-style table for the sql source."""
    app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(conninfo=schema_url(schema))
    )

    @app.task(name="noop", queue="default")
    def noop() -> None:
        pass

    with connect(schema) as conn:
        create_layout(conn, "good_job_4.sql")
        create_layout(conn, "solid_queue_1.sql")
        conn.execute("CREATE TABLE que_jobs (id bigserial PRIMARY KEY, run_at timestamptz)")
    with app.open():
        app.schema_manager.apply_schema()
        yield app


def sample_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                env: dict[str, str]) -> tuple[int, dict[str, Any]]:  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = cli.main(["sample", "--json"])
    out = json.loads(capsys.readouterr().out)
    return code, out["processes"]["worker"]


SQL = (
    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(run_at)), 0)"
    " FROM que_jobs WHERE run_at <= now()"
)


def enqueue_procrastinate(app: procrastinate.App, schema: str) -> None:
    app.tasks["noop"].defer()


def enqueue_good_job(app: procrastinate.App, schema: str) -> None:
    with connect(schema) as conn:
        good_job_enqueue(conn, "default")


def enqueue_solid_queue(app: procrastinate.App, schema: str) -> None:
    with connect(schema) as conn:
        solid_queue_enqueue(conn, "default")


def enqueue_sql(app: procrastinate.App, schema: str) -> None:
    with connect(schema) as conn:
        conn.execute("INSERT INTO que_jobs (run_at) VALUES (now())")


@pytest.mark.parametrize(
    ("source", "enqueue", "extra"),
    [
        ("procrastinate", enqueue_procrastinate, {"queues": "default"}),
        ("good_job", enqueue_good_job, {"queues": "default"}),
        ("solid_queue", enqueue_solid_queue, {"queues": "default"}),
        ("sql", enqueue_sql, {"sql": SQL}),
    ],
)
def test_sample_json_reports_the_latency(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    apps: procrastinate.App,
    schema: str,
    source: str,
    enqueue: Callable[[procrastinate.App, str], None],
    extra: dict[str, str],
) -> None:
    since_enqueue = Stopwatch()
    enqueue(apps, schema)
    time.sleep(1.0)
    code, out = sample_json(monkeypatch, capsys, env_for(source, schema_url(schema), **extra))
    age = since_enqueue.upper()
    assert code == 0, out
    assert out["ok"] is True and out["metric"] == "job_latency" and out["error"] is None
    assert 1000 <= out["value_ms"] <= age
    if source != "sql":
        assert 1000 <= out["queues"]["default"] <= age
        assert (out["depth"], out["busy"]) == (1, 0)


def test_sample_json_reports_the_http_latency(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    server: FakeHireFire,
) -> None:
    server.answer.oldest_enqueued_at = time.time() - 1.0
    code, out = sample_json(monkeypatch, capsys, env_for("http", None, url=url_of(server)))
    assert code == 0, out
    assert out["value_ms"] == pytest.approx(server.answer.served[-1] * 1000.0)
    assert out["value_ms"] >= 1000


@pytest.mark.parametrize("source", ["procrastinate", "good_job", "solid_queue", "sql"])
def test_an_unreachable_database_is_a_failure_not_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    env = env_for(source, closed_dsn(), **({"sql": SQL} if source == "sql" else {}))
    code, out = sample_json(monkeypatch, capsys, env)
    assert code == 3
    assert out["ok"] is False and out["value_ms"] is None
    assert "cannot read 127.0.0.1" in out["error"]
