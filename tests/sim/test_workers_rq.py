"""The simulated job signal against what the real rq source reads from a real RQ queue fed the
same jobs and drained by one real rq worker (one slot), in real time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from rq import Queue, Worker

from autoscaler.sim.jobmodel import Job, WorkerModel
from tests.helpers import empty_redis
from tests.sources.redisjobs import REDIS_URL, ROOT, make_source
from tests.sources.rq import jobs

pytestmark = pytest.mark.integration

#: (due after the start, duration) in seconds; one slot: starts at 0, 2, 4 and 5
JOBS = [(0.0, 2.0), (0.0, 2.0), (0.2, 1.0), (2.6, 1.0)]
#: sampled half-way between the moments anything changes
AT = [1.0, 3.0, 4.5, 6.8]


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from empty_redis(REDIS_URL)


def simulated() -> list[tuple[float, int, int]]:
    model = WorkerModel(
        [Job(due, duration, 0) for due, duration in JOBS], 1, concurrency=1, boot_s=0, quantity=1
    )
    return [model.signal(t) for t in AT]


def simulated_finished() -> list[int | None]:
    """The jobs ended since the reading before, as the replay feeds ``finished`` (the rise of
    the model's count of jobs done; unknown at the first reading)."""
    model = WorkerModel(
        [Job(due, duration, 0) for due, duration in JOBS], 1, concurrency=1, boot_s=0, quantity=1
    )
    out: list[int | None] = []
    last: int | None = None
    for t in AT:
        model.signal(t)
        out.append(None if last is None else model.done - last)
        last = model.done
    return out


def test_the_simulated_signal_is_what_the_rq_source_reads(db: redis.Redis) -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rq.cli",
            "worker",
            "--worker-class",
            "rq.worker.SimpleWorker",
            "--url",
            REDIS_URL,
            "default",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        queue = Queue("default", connection=db)
        # a job that holds the worker until the run starts, so that it is up and listening
        gate = queue.enqueue(jobs.sleep, 0.5)
        deadline = time.time() + 20
        while not Worker.all(connection=db) or gate.get_status(refresh=True) != "started":
            assert time.time() < deadline, "the rq worker did not start"
            time.sleep(0.02)
        while gate.get_status(refresh=True) == "started":
            time.sleep(0.01)
        source = make_source("rq", queues="default")
        t0 = time.time()
        pending = list(JOBS)
        read: list[tuple[float, int, int]] = []
        ended: list[int | None] = []
        for at in AT:
            while pending and t0 + pending[0][0] <= time.time() + 1e-3:
                queue.enqueue(jobs.sleep, pending.pop(0)[1])
            while pending and t0 + pending[0][0] < t0 + at:
                time.sleep(max(0.0, t0 + pending[0][0] - time.time()))
                queue.enqueue(jobs.sleep, pending.pop(0)[1])
            time.sleep(max(0.0, t0 + at - time.time()))
            reading = source.sample(time.time())
            assert reading.value_ms is not None
            read.append((reading.value_ms, reading.depth or 0, reading.busy or 0))
            ended.append(reading.finished)
    finally:
        worker.terminate()  # a warm shutdown: the job it runs (if any) ends first
        worker.wait(timeout=30)
    assert ended == simulated_finished() == [None, 1, 1, 2]
    for (age_ms, depth, busy), (sim_ms, sim_depth, sim_busy) in zip(read, simulated(), strict=True):
        assert (depth, busy) == (sim_depth, sim_busy)
        assert age_ms == pytest.approx(sim_ms, abs=300)
