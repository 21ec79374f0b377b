"""The whole loop on the ``sim`` platform with a real RQ queue on the real Redis as the worker
signal: a burst of jobs scales the worker formation up; once drained, it comes down after
DOWN_DELAY, one step per delay. Time is a fake clock whose wall time starts at the real time, so
job ages grow as the clock is moved."""

from __future__ import annotations

import time

import pytest
import redis
from rq import Queue, SimpleWorker

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.loop import Autoscaler
from autoscaler.registry import build_platform, build_source

REDIS_URL = "redis://127.0.0.1:6379/1"  # the lead's database for end-to-end tests


@pytest.fixture
def conn():
    c = redis.Redis.from_url(REDIS_URL)
    c.flushdb()
    yield c
    c.flushdb()
    c.close()


def test_a_burst_of_rq_jobs_scales_workers_up_and_draining_brings_them_down(conn):
    env = {
        "AUTOSCALER_PLATFORM": "sim",
        "AUTOSCALER_PROCESSES": "worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "AUTOSCALER_WORKER_QUEUES": "default",
        "AUTOSCALER_WORKER_MIN": "1",
        "AUTOSCALER_WORKER_MAX": "6",
        "AUTOSCALER_WORKER_DOWN_DELAY": "60s",
        "AUTOSCALER_SIM_SPEED": "1",
        "REDIS_URL": REDIS_URL,
    }
    settings = load(env)
    platform = build_platform(settings)
    source = build_source(settings, settings.processes["worker"])
    clock = FakeClock(mono=0.0, wall=time.time())
    scaler = Autoscaler(settings, platform, {"worker": source}, clock)
    start = platform.read(["worker"])["worker"].quantity
    platform.scale({"worker": 1}, {"worker": start})

    queue = Queue("default", connection=conn)
    for i in range(40):
        queue.enqueue("builtins.len", [i])

    history = []

    def tick(seconds):
        report = scaler.tick()
        assert report.ok, report.platform_error
        assert not report.source_errors, report.source_errors
        history.append((report.decisions[0].action.value, report.decisions[0].desired))
        clock.advance(seconds)
        return report.decisions[0]

    first = tick(15)  # jobs are ~0 s old: below the band, nothing to do at 1
    assert first.action.value == "hold"
    up = tick(5)  # oldest job is ~15 s old: above 10 s
    assert (up.action.value, up.desired) == ("up", 2)
    for _ in range(12):  # still waiting: one more upscale per 60 s cooldown
        tick(5)
    assert platform.read(["worker"])["worker"].quantity == 4

    SimpleWorker([queue], connection=conn).work(burst=True)
    assert queue.count == 0
    drained = clock.mono

    downs = []
    for _ in range(60):  # five simulated minutes
        d = tick(5)
        if d.action.value == "down":
            downs.append((clock.mono, d.desired, d.reason.value))
    assert platform.read(["worker"])["worker"].quantity == 1
    # nothing due or running for UP_COOLDOWN (60 s): straight to MIN in one step
    assert len(downs) == 1
    at, desired, reason = downs[0]
    assert (desired, reason) == (1, "idle")
    assert at - drained >= 60
    scaler.close()
