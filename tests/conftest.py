"""Fixtures shared by the lock, loop and end-to-end tests: Redis database 8 (``redis_db``; the
web tests have their own), PostgreSQL schemas ``t_lock_*``; and, for the commands' tests, an
environment with no ``AUTOSCALER_*`` variable (``clean_env``)."""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.helpers import DATABASE_URL, REDIS_URL


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """Every test leaves SIGTERM and SIGINT as it found them. A library run in-process may not
    (an RQ worker's ``work`` keeps its own handlers), and a handler that does not exit, inherited
    by the workers a later test forks, kept a pool from ending."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


@pytest.fixture
def unique() -> str:
    return "t_lock_" + secrets.token_hex(4)


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def pg_schema(unique: str) -> Iterator[str]:
    yield unique
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {unique} CASCADE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``AUTOSCALER_*`` variable, and a fresh working directory (no ``.env`` file)."""
    for key in list(os.environ):
        if key.startswith("AUTOSCALER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
