"""The daemon side: the ``request_queue_time`` source reading merged slots from Redis."""

from __future__ import annotations

import math
import socket
import time
from typing import Any

import pytest
import redis

from autoscaler import config
from autoscaler.model import Metric
from autoscaler.ports import ConfigError, SourceError
from autoscaler.sources import request_queue_time as rqt
from autoscaler.web import wire
from autoscaler.web.publisher import queue_flush
from tests.web.conftest import REDIS_URL
from tests.web.helpers import flush, slot_hash

NOW = 1_800_000_002.0  # 2 s into slot 360000000
SLOT = wire.slot_of(NOW)


def read(slots: dict[int, dict[bytes, bytes]], newest: float | None, **kw: Any) -> Any:
    args: dict[str, Any] = {"now": NOW, "window": 30.0, "aggregate": "p95", "where": "KEY"}
    args.update(kw)
    return rqt.reading_from(slots, newest, **args)


def test_the_window_covers_every_overlapping_slot_and_the_next_one() -> None:
    assert rqt.window_slots(NOW, 30.0) == list(range(SLOT - 6, SLOT + 2))


def test_nothing_ever_published_is_missing_with_no_age() -> None:
    r = read({}, None)
    assert (r.metric, r.value_ms, r.samples, r.age_s) == (Metric.REQUEST_QUEUE_TIME, None, 0, None)
    assert r.warning is not None and "middleware" in r.warning


def test_only_flushes_older_than_the_window_is_missing_with_their_age() -> None:
    r = read({SLOT - 1: {}, SLOT: {}}, NOW - 95.0)
    assert (r.value_ms, r.samples, r.age_s) == (None, 0, 95.0)


def test_slots_without_a_seen_set_take_their_age_from_the_newest_slot() -> None:
    r = read({SLOT - 2: slot_hash(flush([30.0] * 6))}, None)
    assert (r.samples, r.age_s) == (6, NOW - (SLOT - 1) * 5)  # the end of that slot: 7 s ago
    assert r.warning is not None and "seen set" in r.warning


def test_heartbeats_only_mean_no_traffic_a_valid_zero() -> None:
    r = read({SLOT - 1: slot_hash(flush([]), flush([])), SLOT: slot_hash(flush([]))}, NOW - 2)
    assert (r.value_ms, r.samples, r.age_s) == (0.0, 0, 2.0)


def test_requests_without_the_header_alone_read_as_no_traffic_with_a_warning() -> None:
    r = read({SLOT: slot_hash(flush([], requests=6, drops={"absent": 6}))}, NOW - 1)
    assert (r.value_ms, r.samples) == (0.0, 0)
    assert r.warning is not None and "absent=6" in r.warning


def test_unusable_headers_and_no_samples_are_not_a_zero() -> None:
    bad = flush([], requests=9, drops={"garbage": 4, "future": 5})
    r = read({SLOT: slot_hash(bad)}, NOW - 1)
    assert (r.value_ms, r.samples) == (None, 0)
    assert r.warning is not None and "unusable" in r.warning


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("avg", 40.0), ("p50", 20.0), ("p90", 100.0), ("p95", 100.0), ("p99", 100.0), ("max", 100.0)],
)
def test_the_configured_aggregate_is_taken_over_every_slot_in_the_window(
    aggregate: str, expected: float
) -> None:
    slots = {
        SLOT - 3: slot_hash(flush([10.0] * 2)),
        SLOT - 1: slot_hash(flush([20.0] * 3), flush([100.0] * 2)),
    }
    r = read(slots, NOW - 4, aggregate=aggregate)
    assert r.value_ms == pytest.approx(expected, rel=0.01)
    assert (r.samples, r.age_s) == (7, 4.0)


def test_busy_is_the_newest_complete_slot_and_rate_counts_all_requests() -> None:
    slots = {
        SLOT - 2: slot_hash(flush([5.0], busy=9, requests=40)),
        SLOT - 1: slot_hash(flush([5.0], busy=2, requests=40), flush([5.0], busy=3, requests=40)),
        SLOT: slot_hash(flush([], busy=1, requests=0)),  # still filling
    }
    r = read(slots, NOW - 1)
    assert (r.busy, r.rate_per_s) == (5, 4.0)


def test_unreadable_slots_are_skipped_and_named_but_all_unreadable_is_an_error() -> None:
    newer = {b"v": b"2", b"n": b"0"}
    r = read({SLOT - 1: slot_hash(flush([50.0])), SLOT: newer}, NOW)
    assert (r.value_ms, r.samples) == (pytest.approx(50.0, rel=0.01), 1)
    assert r.warning is not None and "wire version '2'" in r.warning
    with pytest.raises(SourceError, match="wire version '2'"):
        read({SLOT: newer}, NOW)


def test_in_use_is_the_busy_seconds_per_second_of_the_complete_slots() -> None:
    slots = {
        SLOT - 4: slot_hash(flush([5.0], busy_s=10.0)),
        SLOT - 3: slot_hash(flush([5.0], busy_s=4.0), flush([], busy_s=6.0)),
        SLOT - 1: slot_hash(flush([5.0], busy_s=20.0)),  # SLOT - 2: nobody flushed
        SLOT: slot_hash(flush([5.0], busy_s=99.0)),  # still filling: left out
    }
    r = read(slots, NOW - 1)
    assert r.in_use == pytest.approx(40.0 / 20.0)  # from SLOT - 4 to SLOT - 1: 20 s
    assert r.warning is None


def test_in_use_counts_from_the_first_slot_anyone_published_in() -> None:
    r = read({SLOT - 1: slot_hash(flush([], busy_s=15.0))}, NOW - 1)  # just deployed
    assert r.in_use == pytest.approx(3.0)


def test_in_use_is_unknown_without_publishers_that_report_it() -> None:
    r = read({SLOT - 1: slot_hash(flush([5.0])), SLOT - 2: slot_hash(flush([5.0]))}, NOW - 1)
    assert r.in_use is None and r.warning is None


def test_in_use_is_unknown_when_some_flushes_do_not_report_it_never_an_undercount() -> None:
    mixed = {SLOT - 1: slot_hash(flush([5.0], busy_s=20.0), flush([5.0]))}  # a deploy
    r = read(mixed, NOW - 1)
    assert r.in_use is None
    assert r.warning is not None and "1 of 2 flushes report busy time" in r.warning
    unreadable = {SLOT - 2: {b"v": b"2"}, SLOT - 1: slot_hash(flush([5.0], busy_s=20.0))}
    r = read(unreadable, NOW - 1)
    assert r.in_use is None and r.value_ms is not None
    assert r.warning is not None and "in_use unknown" in r.warning


def test_a_slot_with_absurd_counts_is_never_read_as_a_signal_or_a_rate() -> None:
    """Issue 14 item 11: n = r = 10**30 read as a valid 7 ms at 2e29 requests/s."""
    big = str(10**30).encode()
    absurd = {b"v": b"1", b"f": b"1", str(wire.bucket_of(7.0)).encode(): big, b"n": big}
    absurd |= {b"r": big, b"s": repr(7.0 * 10**30).encode(), b"keep": b"300"}
    with pytest.raises(SourceError, match="more than 6000000 requests per flush"):
        read({SLOT - 1: absurd}, NOW - 1)
    r = read({SLOT - 2: slot_hash(flush([50.0] * 30)), SLOT - 1: absurd}, NOW - 1)
    assert (r.samples, r.rate_per_s) == (30, 1.0)
    assert r.warning is not None and "1 unreadable slot(s) ignored" in r.warning


def test_a_window_longer_than_the_apps_retention_is_pointed_out() -> None:
    r = read({SLOT: slot_hash(flush([5.0], keep=300.0, requests=600))}, NOW - 1, window=600.0)
    assert r.warning is not None and "keeps 300s" in r.warning
    assert r.rate_per_s == pytest.approx(2.0)  # 600 requests over the 300 s kept


def _settings(**env: str) -> config.Settings:
    heroku = {"HEROKU_API_TOKEN": "t", "HEROKU_APP_NAME": "app"}
    return config.load({"AUTOSCALER_PLATFORM": "heroku", **heroku, **env})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_source_reads_the_window_from_real_redis(redis_db: redis.Redis) -> None:
    settings = _settings(REDIS_URL=REDIS_URL, AUTOSCALER_WEB_WINDOW="20s")
    source = rqt.build(settings, settings.processes["web"])
    now = time.time()
    pipe = redis_db.pipeline()
    old = flush([900.0])
    queue_flush(pipe, process="web", publisher="web.1:1", now=now - 60, inc=old, keep=300)
    new = flush([40.0] * 19 + [200.0])
    queue_flush(pipe, process="web", publisher="web.2:1", now=now - 3, inc=new, keep=300)
    pipe.execute()
    try:
        r = source.sample(now)
        assert source.check() == (
            "redis reachable; 2 app process(es) publishing under autoscaler:queue_time:v1:web:*"
        )
    finally:
        source.close()
    assert r.samples == 20  # the 900 ms flush is outside the window
    assert r.value_ms == pytest.approx(40.0, rel=0.01)  # p95 of 19x40 and 1x200 (nearest rank)
    assert r.age_s == pytest.approx(3.0, abs=0.01)


def test_redis_unreachable_is_a_source_error_never_a_zero() -> None:
    settings = _settings(REDIS_URL=f"redis://:s3cretpass@127.0.0.1:{_closed_port()}/3")
    source = rqt.build(settings, settings.processes["web"])
    try:
        with pytest.raises(SourceError, match="autoscaler:queue_time:v1:web") as info:
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


def test_a_publisher_written_from_the_readmes_recipe_alone_is_read_by_the_daemon(
    redis_db: redis.Redis,
) -> None:
    """What a Rack or Express publisher would send, command by command, as documented."""
    now = time.time()
    t = now - 2
    samples = [12.0] * 18 + [250.0, 400.0]
    buckets: dict[int, int] = {}
    for q in samples:
        k = 0 if q < 1 else math.floor(math.log(q) / math.log(1.02)) + 1
        buckets[k] = buckets.get(k, 0) + 1
    h = f"autoscaler:queue_time:v1:web:{math.floor(t / 5)}"
    s = "autoscaler:queue_time:v1:web:seen"
    pipe = redis_db.pipeline(transaction=True)  # MULTI ... EXEC
    for k, count in buckets.items():
        pipe.execute_command("HINCRBY", h, str(k), count)
    pipe.execute_command("HINCRBY", h, "n", len(samples))
    pipe.execute_command("HINCRBY", h, "r", len(samples) + 3)
    pipe.execute_command("HINCRBY", h, "f", 1)
    pipe.execute_command("HINCRBYFLOAT", h, "s", sum(samples))
    pipe.execute_command("HINCRBYFLOAT", h, "busy", 2 * 5 / 5)
    pipe.execute_command("HINCRBY", h, "d:absent", 3)
    pipe.execute_command("HSET", h, "v", 1, "keep", 300)
    pipe.execute_command("EXPIRE", h, 300)
    pipe.execute_command("ZADD", s, t, "web.1:4242")
    pipe.execute_command("ZREMRANGEBYSCORE", s, "-inf", t - 300)
    pipe.execute_command("EXPIRE", s, 300)
    pipe.execute()

    source = rqt.RequestQueueTimeSource(redis_db, "web", 30.0, "p95")
    r = source.sample(now)
    assert (r.samples, r.age_s) == (20, pytest.approx(2.0, abs=0.01))
    assert r.value_ms == pytest.approx(250.0, rel=0.01)
    assert r.rate_per_s == pytest.approx(23 / 30)


def test_a_redis_url_of_another_scheme_is_a_config_error_naming_redis_url() -> None:
    settings = _settings(REDIS_URL="https://user:pw123456@example.com/")
    with pytest.raises(ConfigError) as info:
        rqt.build(settings, settings.processes["web"])
    assert list(info.value.problems) == ["REDIS_URL"]
    assert "pw123456" not in str(info.value)
