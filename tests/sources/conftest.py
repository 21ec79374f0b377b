"""Fixtures for the job sources: the Redis test database and Redis addresses where nothing
answers; a PostgreSQL schema of its own per test module; the fake HireFire endpoint."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import psycopg
import pytest
import redis

from tests.helpers import empty_redis

from .http.hirefire import Answer, FakeHireFire
from .pgjobs import BASE_URL
from .redisjobs import REDIS_DB, REDIS_URL


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    """The test database, empty before and after each test."""
    yield from empty_redis(REDIS_URL)


@pytest.fixture
def closed_url() -> str:
    """A Redis URL on a local port where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/{REDIS_DB}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A Redis URL on a local server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/{REDIS_DB}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture(scope="module")
def schema(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh schema ``t_pgjobs_<module>``, dropped after the module."""
    name = "t_pgjobs_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="module")
def running_server() -> Iterator[FakeHireFire]:
    with FakeHireFire() as srv:
        yield srv


@pytest.fixture
def server(running_server: FakeHireFire) -> FakeHireFire:
    """The module's server, answering afresh for each test."""
    running_server.answer = Answer()
    return running_server
