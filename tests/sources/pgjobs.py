"""The PostgreSQL and HTTP job sources' test database, sources built from config vars through the
registry, and addresses where nothing answers (their fixtures are in ``conftest.py``)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from autoscaler import config
from autoscaler.ports import Source
from autoscaler.registry import build_source
from tests.helpers import Stopwatch

BASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
LAYOUTS = Path(__file__).parent / "layouts"


def schema_url(schema: str) -> str:
    """The test database with ``schema`` first on the search path, as an operator would set it."""
    return f"{BASE_URL}?options=-csearch_path%3D{schema}"


def connect(schema: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(schema_url(schema), autocommit=True)


def env_for(
    source: str, dsn: str | None, queues: str | None = None, **extra: str
) -> dict[str, str]:
    env = {
        "AUTOSCALER_PLATFORM": "sim",
        "AUTOSCALER_PROCESSES": "worker",
        "AUTOSCALER_WORKER_SOURCE": source,
        **{f"AUTOSCALER_WORKER_{key.upper()}": value for key, value in extra.items()},
    }
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    if queues is not None:
        env["AUTOSCALER_WORKER_QUEUES"] = queues
    return env


def make_source(source: str, dsn: str | None, queues: str | None = None, **extra: str) -> Source:
    """A source built the way the daemon builds it: from config vars, through the registry."""
    settings = config.load(env_for(source, dsn, queues, **extra))
    return build_source(settings, settings.processes["worker"])


def sample_once(source: str, schema: str, queues: str | None = "default", **extra: str) -> Any:
    """One poll of a fresh ``source`` over ``schema``'s tables."""
    built = make_source(source, schema_url(schema), queues, **extra)
    try:
        return built.sample(time.time())
    finally:
        built.close()


def closed_port() -> int:
    """A local port where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_dsn() -> str:
    return f"postgresql://postgres@127.0.0.1:{closed_port()}/test"


def ready_source(source: str, dsn: str | None, queues: str | None = None, **extra: str) -> Source:
    """A source that has polled once already, so that it is connected as the daemon's is between
    polls and a timed test measures the jobs, not the connection."""
    built = make_source(source, dsn, queues, **extra)
    built.sample(0.0)
    return built


Job = TypeVar("Job")


def a_started_job_is_busy_not_waiting(
    source: str, schema: str, enqueue: Callable[[], Job], start: Callable[[Job], None]
) -> Job:
    """Enqueue a job, another 0.5 s later, then ``start`` the first: one job is busy, one
    waits, and the latency is the waiting job's age, not the started one's. Returns the
    started job."""
    polled = ready_source(source, schema_url(schema), "default")
    started = enqueue()
    since_started = Stopwatch()
    time.sleep(0.5)
    since_waiting = Stopwatch()
    enqueue()
    start(started)
    started_age = since_started.lower()  # at least 0.5 s older than the waiting job
    reading = polled.sample(time.time())
    waiting_age = since_waiting.upper()
    polled.close()
    assert reading.busy == 1
    assert reading.depth == 1
    assert reading.value_ms is not None
    assert 0 <= reading.value_ms <= waiting_age  # the waiting job's age...
    assert reading.value_ms < started_age  # ...not the started one's
    return started
