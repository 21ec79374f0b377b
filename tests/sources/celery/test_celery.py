"""The celery source against tasks published by the real Celery (kombu's Redis transport).

kombu 5.7.0's Redis transport refuses redis-py below 6.1.0 (``Channel._get_client``; its wheel
asks for redis>=6.4) and arq needs redis-py below 6, so Celery
runs in a second environment: ``.venv-celery`` at the repository root (or the interpreter named
by ``TEST_CELERY_PYTHON``), created by ``scripts/test``. The source itself runs here,
on redis-py 5.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from autoscaler.ports import SourceError
from autoscaler.sources import celery as celery_source
from autoscaler.sources._redisjobs import Malformed
from tests.sources.redisjobs import REDIS_URL, ROOT, make_source

pytestmark = pytest.mark.integration
NOW = 1785665500.0


def celery_python() -> str:
    explicit = os.environ.get("TEST_CELERY_PYTHON")
    if explicit:
        return explicit
    if redis.VERSION >= (6, 1):
        return sys.executable
    candidate = ROOT / ".venv-celery" / "bin" / "python"
    if not candidate.exists():
        pytest.fail(
            "Celery needs redis-py >= 6.1 next to this redis-py 5: create it with "
            "python3 -m venv .venv-celery && "
            ".venv-celery/bin/pip install 'celery[redis]>=5.4' 'redis>=6.4'"
        )
    return str(candidate)


def celery_env(stamp: bool) -> dict[str, str]:
    return {**os.environ, "CELERY_BROKER_URL": REDIS_URL, "STAMP": "1" if stamp else "0"}


def publish(*specs: dict[str, Any], stamp: bool = True) -> list[float]:
    """Publish one task per spec with the real Celery; return when each publish returned."""
    done = subprocess.run(
        [celery_python(), "-m", "tests.sources.celery.celery_app", json.dumps(list(specs))],
        cwd=ROOT,
        env=celery_env(stamp),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    published: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return published


def message(headers: dict[str, Any], properties: dict[str, Any]) -> bytes:
    return json.dumps({"body": "", "headers": headers, "properties": properties}).encode()


PAST = "2026-08-02T10:11:30+00:00"  # NOW - 10 s
LATER = "2026-08-02T10:20:00+00:00"
Timing = celery_source.Timing


@pytest.mark.parametrize(
    ("headers", "properties", "expected"),
    [
        ({"eta": None}, {"published_at": NOW - 5}, Timing(NOW - 5)),  # our hook, judoscale's
        ({}, {}, Timing(None)),  # no stamp: unknown
        ({"enqueued_at": PAST}, {}, Timing(NOW - 10)),  # Autoscale.app's hook
        ({"run_at": "2026-08-02T10:11:30"}, {}, Timing(NOW - 10)),  # HireFire's hook, naive UTC
        ({"enqueued_at": NOW - 2}, {}, Timing(NOW - 2)),
        ({"eta": LATER}, {"published_at": NOW}, Timing(None, future=True)),
        ({"eta": PAST}, {"published_at": NOW - 60}, Timing(NOW - 10)),  # due at its ETA
        ({"eta": PAST}, {}, Timing(NOW - 10)),
        ({"eta": "2026-08-02T10:11:30"}, {}, Timing(NOW - 10)),  # a naive ETA is UTC
        ({"eta": PAST}, {"published_at": NOW - 3}, Timing(NOW - 3)),  # published after its ETA
    ],
)
def test_timing_reads_stamps_and_etas(
    headers: dict[str, Any], properties: dict[str, Any], expected: celery_source.Timing
) -> None:
    assert celery_source.timing(message(headers, properties), NOW) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x80\x04garbage", "not JSON"),
        (b'{"body": "x"}', "not a kombu message"),
        (message({"eta": "tomorrow"}, {}), "not an ISO 8601 time"),
        (message({"eta": 12}, {}), "not an ISO 8601 time"),
        (message({}, {"published_at": "now"}), "not an epoch timestamp"),
        (message({}, {"published_at": 1e300}), "not a plausible time"),
    ],
)
def test_a_message_that_is_not_celerys_is_malformed(raw: bytes, why: str) -> None:
    with pytest.raises(Malformed, match=why):
        celery_source.timing(raw, NOW)


def test_queue_names_come_from_bindings_without_control_queues() -> None:
    sep = celery_source.SEP
    found = [
        f"celery{sep}{sep}celery".encode(),
        f"mail{sep}{sep}mail".encode(),
        f"{sep}{sep}abc.celery.pidbox".encode(),
        f"{sep}{sep}celeryev.1234".encode(),
        b"garbage",
    ]
    assert celery_source.queue_names(found) == ["celery", "mail"]


def test_an_empty_queue_reads_zero(db: redis.Redis) -> None:
    reading = make_source("celery", queues="celery").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


def test_latency_covers_every_priority_list_and_discovered_queue(db: redis.Redis) -> None:
    t_low, t_high, t_mail = publish(
        {"priority": 9}, {"priority": 0}, {"priority": 5, "queue": "mail"}
    )
    assert db.exists("celery", f"celery{celery_source.SEP}9", f"mail{celery_source.SEP}3") == 3
    reading = make_source("celery").sample(t_low + 3.0)
    assert reading.value_ms == pytest.approx(3000, abs=250)
    assert reading.queues["mail"] == pytest.approx((t_low + 3.0 - t_mail) * 1000, abs=250)
    assert (reading.depth, reading.samples) == (3, 3)
    assert t_high >= t_low


def test_a_future_countdown_task_does_not_count(db: redis.Redis) -> None:
    publish({"countdown": 300})
    reading = make_source("celery", queues="celery").sample(time.time())
    assert (reading.value_ms, reading.depth) == (0.0, 0)


def test_a_past_due_eta_task_counts_from_its_eta(db: redis.Redis) -> None:
    # far enough ahead that the publish (a process of its own) returns before it, however slow
    eta = datetime.now(UTC) + timedelta(seconds=30)
    (published,) = publish({"eta": eta.isoformat()})
    assert published < eta.timestamp()
    reading = make_source("celery", queues="celery").sample(eta.timestamp() + 1.5)
    assert reading.value_ms == pytest.approx(1500, abs=250)
    assert reading.depth == 1


def test_without_the_hook_the_queue_reports_depth_only_never_zero(db: redis.Redis) -> None:
    publish({}, {}, stamp=False)
    reading = make_source("celery", queues="celery").sample(time.time())
    assert reading.value_ms is None
    assert reading.depth == 2
    assert reading.warning is not None and "publish hook" in reading.warning


def test_a_task_a_real_worker_runs_is_busy_not_waiting(db: redis.Redis) -> None:
    publish({"seconds": 4})
    worker = subprocess.Popen(
        [
            *(celery_python(), "-m", "celery", "-A", "tests.sources.celery.celery_app", "worker"),
            *("-Q", "celery", "--pool", "solo", "-l", "WARNING", "--without-heartbeat"),
            *("--without-mingle", "--without-gossip"),
        ],
        cwd=ROOT,
        env=celery_env(stamp=True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while db.llen("celery") or not db.hlen("unacked"):
            assert time.time() < deadline, "the celery worker did not reserve the task"
            time.sleep(0.05)
        reading = make_source("celery", queues="celery").sample(time.time())
        assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 1)
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: the running task finishes
        worker.wait(timeout=30)
    reading = make_source("celery", queues="celery").sample(time.time())
    assert (reading.value_ms, reading.depth, reading.busy) == (0.0, 0, 0)


@pytest.mark.parametrize(
    "raw",
    [b"garbage", b"{}", b'{"headers": [], "properties": {}}', b'{"x": "' + b"y" * 5_000_000],
)
def test_garbage_in_the_broker_fails_naming_the_queue(db: redis.Redis, raw: bytes) -> None:
    db.lpush(f"celery{celery_source.SEP}6", raw)
    with pytest.raises(SourceError, match="celery: queue 'celery'"):
        make_source("celery", queues="celery").sample(time.time())


def test_a_global_key_prefix_is_followed(db: redis.Redis) -> None:
    t0 = time.time()
    properties = {"published_at": t0, "priority": 0}
    db.lpush("myapp:celery", message({"eta": None, "task": "nap"}, properties))
    reading = make_source("celery", queues="celery", key_prefix="myapp:").sample(t0 + 1)
    assert reading.queues == {"celery": pytest.approx(1000, abs=250)}
