"""The http source against a local HTTP server on 127.0.0.1 answering in HireFire's JSON shape
(what hirefire-resource's ``/hirefire/<token>/info`` returns: ``[{"name", "value"}]``)."""

from __future__ import annotations

import time

import pytest

from autoscaler.ports import ConfigError, SourceError
from autoscaler.redact import redact
from tests.helpers import Stopwatch
from tests.sources.pgjobs import closed_port, make_source

from .hirefire import TOKEN, FakeHireFire, url_of


def sample(url: str, **extra: str) -> object:
    source = make_source("http", None, url=url, **extra)
    try:
        return source.sample(time.time())
    finally:
        source.close()


def test_latency_in_seconds_from_the_process_entry(server: FakeHireFire) -> None:
    source = make_source("http", None, url=url_of(server))
    source.sample(time.time())  # connected, as the daemon is between polls
    since_enqueue = Stopwatch()
    server.answer.oldest_enqueued_at = time.time()
    time.sleep(1.0)
    reading = source.sample(time.time())
    age = since_enqueue.upper()
    source.close()
    assert reading.value_ms is not None and 1000 <= reading.value_ms <= age
    assert set(reading.queues) == {"worker"}


def test_empty_queue_is_zero(server: FakeHireFire) -> None:
    assert sample(url_of(server)).value_ms == 0.0  # type: ignore[attr-defined]


def test_latency_in_milliseconds(server: FakeHireFire) -> None:
    server.answer.body = b'[{"name": "worker", "value": 1500}]'
    assert sample(url_of(server), http_value="latency_ms").value_ms == 1500.0  # type: ignore[attr-defined]


def test_size_is_a_job_count_read_as_one_second_per_job(server: FakeHireFire) -> None:
    server.answer.body = b'[{"name": "worker", "value": 42, "quantity": 2}]'
    reading = sample(url_of(server), http_value="size")
    assert (reading.value_ms, reading.depth) == (42_000.0, 42)  # type: ignore[attr-defined]


def test_the_token_is_sent_as_a_header_and_kept_out_of_messages(server: FakeHireFire) -> None:
    server.answer.status = 503
    with pytest.raises(SourceError) as info:
        sample(url_of(server), http_token="s3cr3t-token-value")
    assert server.answer.seen[0]["hirefire-token"] == "s3cr3t-token-value"
    assert "answered 503" in str(info.value)
    assert TOKEN not in str(info.value)
    assert TOKEN not in redact(f"GET {url_of(server)}")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"name": "worker", "value": 1}', "not a list"),
        (b'[{"name": "web", "value": 1}]', "no entry named 'worker'.*names: 'web'"),
        (b'[{"name": "worker", "value": 1}, {"name": "worker", "value": 2}]', "2 entries"),
        (b'[{"name": "worker", "value": null}]', "value is null.*not read as 0"),
        (b'[{"name": "worker", "quantity": null}]', "quantity is null.*not read as 0"),
        (b'[{"name": "worker", "quantity": "3"}]', "not a number"),
        (b'[{"name": "worker", "value": "12"}]', "not a number"),
        (b'[{"name": "worker", "value": true}]', "not a number"),
        (b'[{"name": "worker", "value": -1}]', "not a finite number >= 0"),
        (b'[{"name": "worker", "value": NaN}]', "not a finite number >= 0"),
        (b'[{"name": "worker", "value": 1e999}]', "not a finite number >= 0"),
        (b'[{"name": "worker"}]', "not a number"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'[{"name": "worker", "value": 1, "pad": "' + b"x" * (1 << 20) + b'"}]', "1 MiB"),
    ],
)
def test_garbage_fails_with_the_reason(server: FakeHireFire, body: bytes, why: str) -> None:
    server.answer.body = body
    with pytest.raises(SourceError, match=why):
        sample(url_of(server))


@pytest.mark.parametrize(
    ("body", "unit", "ms"),
    [
        # hirefire-resource before December 2021: "quantity" rather than "value"
        (b'[{"name": "web", "quantity": null}, {"name": "worker", "quantity": 7}]', "size", 7000.0),
        (b'[{"name": "worker", "quantity": 2.5}]', "latency", 2500.0),
        (b'[{"name": "worker", "quantity": 0}]', "latency", 0.0),
    ],
)
def test_the_older_quantity_format_is_read(
    server: FakeHireFire, body: bytes, unit: str, ms: float
) -> None:
    server.answer.body = body
    assert sample(url_of(server), http_value=unit).value_ms == ms  # type: ignore[attr-defined]


def test_a_fractional_size_fails(server: FakeHireFire) -> None:
    server.answer.body = b'[{"name": "worker", "value": 2.5}]'
    with pytest.raises(SourceError, match="whole number"):
        sample(url_of(server), http_value="size")


def test_a_redirect_is_not_followed(server: FakeHireFire) -> None:
    server.answer.status = 302
    server.answer.headers = {"Location": "http://example.invalid/"}
    with pytest.raises(SourceError, match=r"answered 302 \(redirects are not followed"):
        sample(url_of(server))


def test_a_slow_endpoint_times_out(server: FakeHireFire) -> None:
    server.answer.delay = 1.0
    with pytest.raises(SourceError, match=r"no answer within 0\.3s"):
        sample(url_of(server), http_timeout="300ms")


def test_an_unreachable_endpoint_fails_and_is_not_zero() -> None:
    with pytest.raises(SourceError, match=r"http://127\.0\.0\.1:\d+: ConnectError"):
        sample(f"http://127.0.0.1:{closed_port()}/hirefire/{TOKEN}/info")


@pytest.mark.parametrize(
    ("extra", "var"),
    [
        ({"http_value": "count"}, "AUTOSCALER_WORKER_HTTP_VALUE"),
        ({"http_timeout": "soon"}, "AUTOSCALER_WORKER_HTTP_TIMEOUT"),
        ({"http_timeout": "5m"}, "AUTOSCALER_WORKER_HTTP_TIMEOUT"),
        ({"queues": "a"}, "AUTOSCALER_WORKER_QUEUES"),
        ({"url": "ftp://example.com/x"}, "AUTOSCALER_WORKER_URL"),
    ],
)
def test_bad_settings_are_named(extra: dict[str, str], var: str) -> None:
    settings = {"url": "http://127.0.0.1:1/info", **extra}
    with pytest.raises(ConfigError) as info:
        make_source("http", None, **settings)
    assert var in info.value.problems


def test_check_reads_the_endpoint_in_its_unit(server: FakeHireFire) -> None:
    server.answer.body = b'[{"name": "worker", "value": 12}]'
    source = make_source("http", None, url=url_of(server), http_value="size")
    assert source.check() == f"{server.url} answers worker: 12 job(s)"
    source.close()
