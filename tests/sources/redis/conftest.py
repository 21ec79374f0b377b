"""Fixtures for the Redis job sources: the test database, sources built from config vars, and
addresses where nothing answers."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from autoscaler import config
from autoscaler.ports import Source
from autoscaler.registry import build_source

#: this area's Redis databases are 4 and 5; the default run uses 4
REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "4"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    """The test database, empty before and after each test."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_source(
    backend: str, queues: str | None = None, url: str | None = REDIS_URL, **extra: str
) -> Source:
    """A source built the way the daemon builds it: from config vars, through the registry."""
    env = {
        "AUTOSCALER_PROCESSES": "worker",
        "AUTOSCALER_WORKER_SOURCE": backend,
        **{f"AUTOSCALER_WORKER_{key.upper()}": value for key, value in extra.items()},
    }
    if queues is not None:
        env["AUTOSCALER_WORKER_QUEUES"] = queues
    if url is not None:
        env["REDIS_URL"] = url
    settings = config.load(env)
    return build_source(settings, settings.processes["worker"])


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
