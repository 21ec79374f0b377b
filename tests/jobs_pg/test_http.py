"""The http source against a local HTTP server on 127.0.0.1 answering in HireFire's JSON shape
(what hirefire-resource's ``/hirefire/<token>/info`` returns: ``[{"name", "value"}]``)."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from autoscaler.ports import ConfigError, SourceError
from autoscaler.redact import redact

from .conftest import closed_port, make_source

TOKEN = "a1b2c3d4e5f6a7b8c9d0e1f2"


@dataclass
class Answer:
    status: int = 200
    body: bytes | None = None
    delay: float = 0.0
    oldest_enqueued_at: float | None = None  # what a HireFire latency macro would read
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)

    def render(self) -> bytes:
        if self.body is not None:
            return self.body
        age = 0.0 if self.oldest_enqueued_at is None else time.time() - self.oldest_enqueued_at
        return json.dumps([{"name": "web", "value": 3}, {"name": "worker", "value": age}]).encode()


class FakeHireFire(http.server.ThreadingHTTPServer):
    answer: Answer


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeHireFire

    def do_GET(self) -> None:
        answer = self.server.answer
        answer.seen.append(dict(self.headers))
        time.sleep(answer.delay)
        body = answer.render()
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def running_server() -> Iterator[FakeHireFire]:
    srv = FakeHireFire(("127.0.0.1", 0), Handler)
    srv.answer = Answer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server(running_server: FakeHireFire) -> FakeHireFire:
    """The module's server, answering afresh for each test."""
    running_server.answer = Answer()
    return running_server


def url_of(srv: FakeHireFire) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/hirefire/{TOKEN}/info"


def sample(url: str, **extra: str) -> object:
    source = make_source("http", None, url=url, **extra)
    try:
        return source.sample(time.time())
    finally:
        source.close()


def test_latency_in_seconds_from_the_process_entry(server: FakeHireFire) -> None:
    source = make_source("http", None, url=url_of(server))
    source.sample(time.time())  # connected, as the daemon is between polls
    server.answer.oldest_enqueued_at = time.time()
    time.sleep(1.0)
    reading = source.sample(time.time())
    source.close()
    assert reading.value_ms is not None and 1000 <= reading.value_ms <= 1250
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
    assert server.answer.seen[0]["HireFire-Token"] == "s3cr3t-token-value"
    assert "answered 503" in str(info.value)
    assert TOKEN not in str(info.value)
    assert TOKEN not in redact(f"GET {url_of(server)}")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"name": "worker", "value": 1}', "not a list"),
        (b'[{"name": "web", "value": 1}]', "no entry named 'worker'.*names: web"),
        (b'[{"name": "worker", "value": 1}, {"name": "worker", "value": 2}]', "2 entries"),
        (b'[{"name": "worker", "value": null}]', "not a number"),
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
