"""``autoscaler sample --json`` reports each Redis job backend's latency, measured on real jobs."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import dramatiq
import pytest
import redis
from arq import create_pool
from arq.connections import RedisSettings
from dramatiq.brokers.redis import RedisBroker
from rq import Queue

from autoscaler import cli
from tests.helpers import CLOCK_SLACK_MS
from tests.sources.celery.test_celery import publish
from tests.sources.redisjobs import REDIS_DB, REDIS_URL
from tests.sources.rq import jobs
from tests.sources.sidekiq.test_sidekiq import push

pytestmark = pytest.mark.integration
#: one queue per backend, named so that no two backends' keys collide
QUEUES = {
    "rq": "default",
    "celery": "celery",
    "dramatiq": "default",
    "arq": "arq:queue",
    "sidekiq": "default",
}
BACKENDS = tuple(QUEUES)


def sample_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> tuple[int, dict[str, Any], float, float]:
    # A real platform (never contacted by ``sample``): the sim one runs an accelerated clock.
    platform = {
        "AUTOSCALER_PLATFORM": "heroku",
        "HEROKU_API_TOKEN": "never-used-token",
        "HEROKU_APP_NAME": "app",
        "HEROKU_API_URL": "http://127.0.0.1:9",
    }
    for key, value in (platform | env).items():
        monkeypatch.setenv(key, value)
    before = time.time()
    status = cli.main(["sample", "--json"])
    after = time.time()
    return status, json.loads(capsys.readouterr().out)["processes"], before, after


def enqueue_everywhere(db: redis.Redis) -> dict[str, tuple[float, float]]:
    """One real job per backend; the earliest and the latest its enqueue time can be (the
    library stamps it somewhere within the call)."""
    stamped: dict[str, tuple[float, float]] = {}
    t = time.time()
    Queue("default", connection=db).enqueue(jobs.noop)
    stamped["rq"] = (t, time.time())
    t = time.time()
    stamped["celery"] = (t, publish({"queue": "celery"})[0])  # stamped before it returned
    broker = RedisBroker(url=REDIS_URL)
    try:
        t = time.time()
        dramatiq.actor(jobs.noop, broker=broker, queue_name="default").send()
        stamped["dramatiq"] = (t, time.time())
    finally:
        broker.close()

    async def arq_enqueue() -> None:
        pool = await create_pool(RedisSettings(host="127.0.0.1", database=REDIS_DB))
        try:
            await pool.enqueue_job("noop")
        finally:
            await pool.aclose()

    t = time.time()
    asyncio.run(arq_enqueue())
    stamped["arq"] = (t, time.time())
    t = time.time()
    push(db, "default", t, version=8)
    stamped["sidekiq"] = (t, t)
    return stamped


def test_sample_reports_every_backends_latency(
    db: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stamped = enqueue_everywhere(db)
    time.sleep(1.0)
    env = {
        "AUTOSCALER_PROCESSES": ",".join(f"{b}-worker" for b in BACKENDS),
        "REDIS_URL": REDIS_URL,
    }
    for backend in BACKENDS:
        env[f"AUTOSCALER_{backend.upper()}_WORKER_SOURCE"] = backend
        env[f"AUTOSCALER_{backend.upper()}_WORKER_QUEUES"] = QUEUES[backend]
    status, processes, before, after = sample_json(monkeypatch, capsys, env)
    assert status == 0
    for backend in BACKENDS:
        item = processes[f"{backend}-worker"]
        assert item["ok"] and item["error"] is None, item
        assert item["metric"] == "job_latency"
        earliest, latest = stamped[backend]
        low = (before - latest) * 1000 - CLOCK_SLACK_MS
        high = (after - earliest) * 1000 + CLOCK_SLACK_MS
        assert low <= item["value_ms"] <= high, (backend, item, low, high)
        assert item["queues"] == {QUEUES[backend]: item["value_ms"]}
        assert (item["samples"], item["depth"], item["busy"]) == (1, 1, 0)


def test_sample_reports_a_failure_not_zero_when_redis_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], closed_url: str
) -> None:
    env = {
        "AUTOSCALER_PROCESSES": "worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "AUTOSCALER_WORKER_QUEUES": "default",
        "REDIS_URL": closed_url,
    }
    status, processes, _, _ = sample_json(monkeypatch, capsys, env)
    assert status == cli.EXIT_DEPENDENCY
    item = processes["worker"]
    assert (item["ok"], item["value_ms"]) == (False, None)
    assert "rq: cannot read queue 'default'" in item["error"]


def test_sample_shows_depth_and_no_value_for_unstamped_celery_tasks(
    db: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    publish({}, {}, {}, stamp=False)
    env = {"AUTOSCALER_PROCESSES": "worker", "AUTOSCALER_WORKER_SOURCE": "celery"}
    status, processes, _, _ = sample_json(monkeypatch, capsys, env | {"REDIS_URL": REDIS_URL})
    item = processes["worker"]
    assert (item["ok"], item["value_ms"], item["depth"]) == (False, None, 3)
    assert "publish hook" in item["warning"]
    assert status == cli.EXIT_DEPENDENCY
