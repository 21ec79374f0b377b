"""Fixtures: each store kind against the real Redis (database 12) and PostgreSQL (schema
``t_history``) of the machine, cleaned up after each test."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import redis

from autoscaler.history import HistoryStore
from autoscaler.stores.memory import MemoryStore
from autoscaler.stores.postgres import PostgresStore
from autoscaler.stores.redis import RedisStore

REDIS_URL = "redis://127.0.0.1:6379/12"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "t_history"


@pytest.fixture
def redis_store() -> Iterator[RedisStore]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    store = RedisStore(client, "autoscaler:test")
    yield store
    client.flushdb()
    store.close()


@pytest.fixture
def pg_store() -> Iterator[PostgresStore]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade")
        conn.execute(f"create schema {SCHEMA}")
    store = PostgresStore(PG_URL, "autoscaler:test", schema=SCHEMA)
    yield store
    store.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade")


@pytest.fixture(params=["memory", "redis", "postgres"])
def store(request: pytest.FixtureRequest) -> HistoryStore:
    if request.param == "memory":
        return MemoryStore()
    name = "redis_store" if request.param == "redis" else "pg_store"
    fixture: HistoryStore = request.getfixturevalue(name)
    return fixture
