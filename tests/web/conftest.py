"""Fixtures for the web tests: Redis database 3 (cleaned after each test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from autoscaler.web import publisher, wire
from tests.helpers import empty_redis

REDIS_URL = "redis://127.0.0.1:6379/3"


@pytest.fixture(autouse=True)
def _stop_flushers() -> Iterator[None]:
    """Stop every flusher a test started (their final flush included), then empty database 3,
    so that no thread publishes into a later test or leaves keys behind."""
    yield
    for rec in list(publisher._recorders):
        rec.stop(timeout=3.0)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    yield from empty_redis(REDIS_URL)


def slots(db: redis.Redis, process: str) -> list[wire.Slot]:
    """Every slot hash the publishers left for ``process``, decoded."""
    keys = [k for k in db.scan_iter(f"{wire.PREFIX}{process}:*") if not k.endswith(b":seen")]
    return [wire.decode_slot(db.hgetall(k)) for k in keys]


def totals(db: redis.Redis, process: str) -> dict[str, int]:
    """Samples, flushes and drop counts summed over every slot of ``process``."""
    out = {"n": 0, "f": 0, "r": 0}
    for slot in slots(db, process):
        out["n"] += slot.count
        out["f"] += slot.flushes
        out["r"] += slot.requests
        for reason, n in slot.drops.items():
            out[reason] = out.get(reason, 0) + n
    return out
