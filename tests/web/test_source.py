"""The daemon side: the ``request_queue_time`` source reading merged aggregates from Redis."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
import redis

from adapters.sources import request_queue_time as rqt
from adapters.web import wire
from autoscaler import config
from autoscaler.model import Metric
from autoscaler.ports import ConfigError, SourceError

from .conftest import REDIS_URL

NOW = 1_800_000_000.0
KEY = wire.key_for("web")


def member(
    t: float, values: tuple[float, ...] | list[float] = (), publisher: str = "web.1:1", **extra: Any
) -> str:
    hist = wire.Histogram()
    for v in values:
        hist.add(v)
    doc = json.loads(
        wire.encode(
            hist,
            publisher=publisher,
            t=t,
            interval=5.0,
            keep=extra.pop("keep", 300.0),
            requests=extra.pop("requests", len(values)),
            busy=extra.pop("busy", 0),
            skew=0,
            drops=extra.pop("drops", {}),
        )
    )
    doc.update(extra)
    return json.dumps(doc)


def read(members: list[str], newest: float | None = None, aggregate: str = "p95") -> Any:
    if newest is None and members:
        newest = max(json.loads(m)["t"] for m in members)
    return rqt.reading_from(members, newest, now=NOW, window=30.0, aggregate=aggregate, key=KEY)


def test_nothing_ever_published_is_missing_with_no_age() -> None:
    r = read([], None)
    assert (r.metric, r.value_ms, r.samples, r.age_s) == (Metric.REQUEST_QUEUE_TIME, None, 0, None)
    assert r.warning is not None and "middleware" in r.warning


def test_only_aggregates_older_than_the_window_is_missing_with_their_age() -> None:
    r = read([], newest=NOW - 95.0)
    assert (r.value_ms, r.samples, r.age_s) == (None, 0, 95.0)


def test_heartbeats_only_mean_no_traffic_a_valid_zero() -> None:
    r = read([member(NOW - 7), member(NOW - 2, publisher="web.2:1")])
    assert (r.value_ms, r.samples, r.age_s) == (0.0, 0, 2.0)


def test_requests_without_the_header_alone_read_as_no_traffic_with_a_warning() -> None:
    r = read([member(NOW - 2, requests=6, drops={"absent": 6})])
    assert (r.value_ms, r.samples) == (0.0, 0)
    assert r.warning is not None and "absent=6" in r.warning


def test_unusable_headers_and_no_samples_are_not_a_zero() -> None:
    r = read([member(NOW - 2, requests=9, drops={"garbage": 4, "future": 5})])
    assert (r.value_ms, r.samples) == (None, 0)
    assert r.warning is not None and "unusable" in r.warning


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("avg", 40.0), ("p50", 20.0), ("p90", 100.0), ("p95", 100.0), ("p99", 100.0), ("max", 100.0)],
)
def test_the_configured_aggregate_is_taken_over_every_process_in_the_window(
    aggregate: str, expected: float
) -> None:
    members = [
        member(NOW - 12, [10.0] * 2, "web.1:1"),
        member(NOW - 4, [20.0] * 3 + [100.0] * 2, "web.2:7"),
    ]
    r = read(members, aggregate=aggregate)
    assert r.value_ms == pytest.approx(expected, rel=0.01)
    assert (r.samples, r.age_s) == (7, 4.0)


def test_busy_sums_the_newest_aggregate_of_each_publisher_and_rate_counts_all_requests() -> None:
    members = [
        member(NOW - 11, [5.0], "web.1:1", busy=9, requests=40),
        member(NOW - 6, [5.0], "web.1:1", busy=2, requests=40),
        member(NOW - 5, [5.0], "web.2:1", busy=3, requests=40),
    ]
    r = read(members)
    assert (r.busy, r.rate_per_s) == (5, 4.0)


def test_unreadable_members_are_skipped_and_named_but_all_unreadable_is_an_error() -> None:
    newer = json.dumps({"v": 2, "t": NOW})
    r = read([member(NOW - 3, [50.0]), newer])
    assert (r.value_ms, r.samples) == (pytest.approx(50.0, rel=0.01), 1)
    assert r.warning is not None and "wire version 2" in r.warning
    with pytest.raises(SourceError, match="wire version 2"):
        read([newer], newest=NOW)


def test_a_window_longer_than_the_apps_retention_is_pointed_out() -> None:
    r = rqt.reading_from(
        [member(NOW - 1, [5.0], keep=300.0)],
        NOW - 1,
        now=NOW,
        window=600.0,
        aggregate="p95",
        key=KEY,
    )
    assert r.warning is not None and "keeps 300s" in r.warning


def _settings(**env: str) -> config.Settings:
    return config.load({"AUTOSCALER_PLATFORM": "heroku", **env})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_source_reads_the_window_from_real_redis(redis_db: redis.Redis) -> None:
    settings = _settings(REDIS_URL=REDIS_URL, AUTOSCALER_WEB_WINDOW="20s")
    source = rqt.build(settings, settings.processes["web"])
    now = time.time()
    redis_db.zadd(KEY, {member(now - 60, [900.0]): now - 60})  # outside the window
    redis_db.zadd(KEY, {member(now - 3, [40.0] * 19 + [200.0], "web.2:1"): now - 3})
    try:
        r = source.sample(now)
        assert source.check().startswith("redis reachable; 2 aggregate(s)")
    finally:
        source.close()
    assert r.samples == 20
    assert r.value_ms == pytest.approx(40.0, rel=0.01)  # p95 of 19x40 and 1x200 (nearest rank)
    assert r.age_s == pytest.approx(3.0, abs=0.01)


def test_redis_unreachable_is_a_source_error_never_a_zero() -> None:
    settings = _settings(REDIS_URL=f"redis://:s3cretpass@127.0.0.1:{_closed_port()}/3")
    source = rqt.build(settings, settings.processes["web"])
    try:
        with pytest.raises(SourceError, match=KEY) as info:
            source.sample(time.time())
        with pytest.raises(SourceError):
            source.check()
    finally:
        source.close()
    assert "s3cretpass" not in str(info.value)


def test_the_source_needs_redis_url() -> None:
    settings = _settings()
    with pytest.raises(ConfigError) as info:
        rqt.build(settings, settings.processes["web"])
    assert "REDIS_URL" in info.value.problems
