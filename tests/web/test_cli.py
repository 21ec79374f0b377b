"""``autoscaler sample --json`` for the web signal: missing, no traffic, and Redis down."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from autoscaler import cli
from autoscaler.web.publisher import queue_flush
from tests.helpers import Stopwatch

from .conftest import REDIS_URL
from .helpers import flush


@pytest.fixture
def sample(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Any:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for var in [k for k in os.environ if k.startswith("AUTOSCALER_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AUTOSCALER_PLATFORM", "heroku")
    monkeypatch.setenv("AUTOSCALER_PROCESSES", "web")
    monkeypatch.setenv("HEROKU_API_TOKEN", "not-used-by-sample")  # load checks the platform's
    monkeypatch.setenv("HEROKU_APP_NAME", "demo")

    def run(redis_url: str) -> tuple[int, dict[str, Any]]:
        monkeypatch.setenv("REDIS_URL", redis_url)
        code = cli.main(["sample", "--json"])
        return code, json.loads(capsys.readouterr().out)["processes"]["web"]

    return run


def test_nothing_published_is_reported_as_no_data_and_exit_3(
    sample: Any, redis_db: redis.Redis
) -> None:
    code, web = sample(REDIS_URL)
    assert code == 3
    assert (web["ok"], web["value_ms"], web["samples"], web["age_s"]) == (False, None, 0, None)


def test_heartbeats_only_are_a_valid_zero_with_their_age(
    sample: Any, redis_db: redis.Redis
) -> None:
    pipe = redis_db.pipeline()
    since_beat = Stopwatch()
    now = time.time()
    for i in range(3):
        queue_flush(
            pipe, process="web", publisher=f"web.{i}:1", now=now - 2, inc=flush([]), keep=300
        )
    pipe.execute()
    code, web = sample(REDIS_URL)
    beat_age_s = 2.0 + since_beat.upper() / 1000  # the heartbeats are stamped 2 s back
    assert code == 0
    assert (web["ok"], web["value_ms"], web["samples"]) == (True, 0.0, 0)
    assert 1.5 <= web["age_s"] <= beat_age_s


def test_redis_down_is_a_failed_source_not_a_zero(sample: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, web = sample(f"redis://127.0.0.1:{port}/3")
    assert code == 3
    assert (web["ok"], web["value_ms"]) == (False, None)
    assert "autoscaler:queue_time:v1:web" in web["error"]


def test_sample_shows_the_requests_in_use_when_the_app_reports_busy_time(
    sample: Any, redis_db: redis.Redis
) -> None:
    pipe = redis_db.pipeline()
    now = time.time()
    for i in range(2):  # two processes, 3 s of serving each, 5 s before now: a complete slot
        inc = flush([20.0], busy_s=3.0)
        queue_flush(pipe, process="web", publisher=f"web.{i}:1", now=now - 5, inc=inc, keep=300)
    pipe.execute()
    code, web = sample(REDIS_URL)
    assert code == 0
    assert web["in_use"] == pytest.approx(6.0 / 5.0)
