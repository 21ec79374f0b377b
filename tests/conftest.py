"""Fixtures shared by the lock, loop and end-to-end tests: Redis database 8 (``redis_db``; the
web tests have their own), PostgreSQL schemas ``t_lock_*``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
import redis

from tests.helpers import DATABASE_URL, REDIS_URL


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
