"""Foreign data in errors (issue 14 item 10): a message quotes at most a short, escaped prefix of
what Redis, a database, an endpoint or a platform handed over, so a 1 MB value cannot make a
1 MB log line, and control characters cannot forge one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from autoscaler.platforms._http import error_message
from autoscaler.ports import SourceError
from autoscaler.redact import quote
from autoscaler.sources import _redisjobs, http, rq, sql
from autoscaler.sources.request_queue_time import RequestQueueTimeSource
from autoscaler.web import wire
from tests.helpers import REDIS_URL

MB = 1 << 20
SHORT = 400  # no message about one bad value needs more
HOSTILE = "\x1b[2J\r\n2026-12-03 fake log line\x00"


def short_and_escaped(text: str) -> None:
    assert len(text) < SHORT, len(text)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\x00" not in text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("abc", "'abc'"),
        (b"abc", "b'abc'"),
        ("x" * 100, "'" + "x" * 60 + "' (+40 more characters)"),
        (b"\x00" * 61, "b'" + "\\x00" * 60 + "' (+1 more bytes)"),
        (HOSTILE, repr(HOSTILE)),
        (12.5, "12.5"),
        (list(range(1000)), None),
        (10**5000, "<int too long to show>"),
    ],
    ids=["str", "bytes", "long-str", "long-bytes", "hostile", "float", "list", "huge-int"],
)
def test_quote_shows_a_short_escaped_prefix(value: object, shown: str | None) -> None:
    text = quote(value)
    if shown is not None:
        assert text == shown
    short_and_escaped(text)


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + "/13")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    "fields",
    [
        {"v": "1", "n": "7" * MB + "x"},  # a 1 MB value
        {"v": "1", "n": "0", "d:" + "y" * MB: "z"},  # a 1 MB field name
        {"v": "1", "n": HOSTILE},
        {"v": HOSTILE * 1000},
        {"v": "1", "n": "1", "7" * MB: "1"},
    ],
    ids=["huge-value", "huge-name", "hostile-value", "hostile-version", "huge-bucket"],
)
def test_a_huge_or_hostile_value_in_a_sample_key_makes_a_short_error(
    redis_db: redis.Redis, fields: dict[str, str]
) -> None:
    now = time.time()
    redis_db.hset(wire.slot_key("web", wire.slot_of(now)), mapping=fields)
    source = RequestQueueTimeSource(redis_db, "web", 60.0, "p95")
    with pytest.raises(SourceError) as err:
        source.sample(now)
    short_and_escaped(str(err.value))


def test_job_sources_quote_a_prefix_of_what_they_could_not_read() -> None:
    for bad in ("9" * MB, HOSTILE):
        with pytest.raises(_redisjobs.Malformed) as err:
            rq.parse_enqueued_at(bad)
        short_and_escaped(str(err.value))
        with pytest.raises(_redisjobs.Malformed) as err:
            _redisjobs.json_object(bad.encode())
        short_and_escaped(str(err.value))
        with pytest.raises(SourceError) as serr:
            sql._age_s(bad, "sql")
        short_and_escaped(str(serr.value))


def test_the_http_source_quotes_a_prefix_of_names_and_values() -> None:
    many = "[" + ",".join(f'{{"name": "{"n" * 1000}{i}", "value": 1}}' for i in range(500)) + "]"
    huge_value = b'[{"name": "worker", "value": "' + b"9" * MB + b'"}]'
    for body in (many.encode(), b"<html>" + b"x" * MB, huge_value):
        with pytest.raises(SourceError) as err:
            http.reading_from_body(body, "worker", "latency")
        short_and_escaped(str(err.value))


def test_a_platform_error_body_is_cut_and_escaped() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    for body in ({"message": HOSTILE + "m" * MB}, {"error": HOSTILE}):
        response = httpx.Response(500, json=body, request=request)
        short_and_escaped(error_message(response))
    response = httpx.Response(502, text=HOSTILE + "<html>" * MB, request=request)
    short_and_escaped(error_message(response))
