"""The app side: configuration, per-request recording, publishing, and failure isolation."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.sources.request_queue_time import RequestQueueTimeSource
from autoscaler.web import asgi, publisher, wire, wsgi
from autoscaler.web.publisher import (
    PublisherConfig,
    Recorder,
    busy_seconds,
    publisher_config,
    summarize,
)
from tests.helpers import Stopwatch

from .conftest import REDIS_URL, slots, totals

D = 100_000  # the default AUTOSCALER_MAX_REQUEST_BYTES


@pytest.mark.parametrize(
    ("env", "expected", "warned"),
    [
        ({}, ("web", 5.0, D, 300.0), False),
        ({"DYNO": "web.3"}, ("web", 5.0, D, 300.0), False),
        ({"DYNO": "api.1"}, ("api", 5.0, D, 300.0), False),
        ({"DYNO": "web.1", "AUTOSCALER_PROCESS": "front"}, ("front", 5.0, D, 300.0), False),
        ({"AUTOSCALER_PROCESS": "Not A Name"}, ("web", 5.0, D, 300.0), True),
        ({"AUTOSCALER_FLUSH_INTERVAL": "2s"}, ("web", 2.0, D, 300.0), False),
        ({"AUTOSCALER_FLUSH_INTERVAL": "500ms"}, ("web", 5.0, D, 300.0), True),
        ({"AUTOSCALER_FLUSH_INTERVAL": "soon"}, ("web", 5.0, D, 300.0), True),
        ({"AUTOSCALER_MAX_REQUEST_BYTES": "2000"}, ("web", 5.0, 2000, 300.0), False),
        ({"AUTOSCALER_MAX_REQUEST_BYTES": "100kB"}, ("web", 5.0, D, 300.0), True),
        ({"AUTOSCALER_WEB_WINDOW": "10m"}, ("web", 5.0, D, 660.0), False),
        ({"AUTOSCALER_API_WINDOW": "1h", "DYNO": "api.2"}, ("api", 5.0, D, 3660.0), False),
        ({"AUTOSCALER_WEB_WINDOW": "forever"}, ("web", 5.0, D, 300.0), True),
    ],
)
def test_the_app_environment_configures_the_publisher_and_bad_values_only_warn(
    env: dict[str, str], expected: tuple[str, float, int, float], warned: bool
) -> None:
    cfg = publisher_config(env)
    assert (cfg.process, cfg.interval, cfg.max_body, cfg.keep) == expected
    assert bool(cfg.warnings) is warned


def test_the_publisher_is_named_after_the_dyno_or_the_host() -> None:
    assert publisher_config({"DYNO": "web.2"}).publisher == "web.2"
    assert publisher_config({}).publisher == socket.gethostname()


def _recorder(**kw: Any) -> Recorder:
    """A recorder whose flusher (started by the first request) waits a minute: the tests
    publish by hand."""
    kw.setdefault("interval", 60.0)
    return Recorder(PublisherConfig(redis_url=REDIS_URL, publisher="test", **kw))


def _ms_ago(ms: float) -> str:
    return str(int(time.time() * 1000 - ms))


def test_each_request_is_a_sample_or_a_counted_reason_why_not() -> None:
    rec = _recorder(max_body=1000)
    since_stamped = Stopwatch()  # each sample waits its stamp's age plus at most this
    rec.begin(0, _ms_ago(40), None)
    rec.begin(0, _ms_ago(200), "10")
    rec.begin(0, _ms_ago(200), "5000")  # large upload: skipped
    rec.begin(0, _ms_ago(-3000), None)  # router clock 3 s ahead: clamped to 0
    rec.begin(0, "garbage", None)
    rec.begin(0, None, None)
    rec.begin(0, _ms_ago(3_600_000), "abc")
    cur, busy = rec.swap()
    late = since_stamped.ms() + 1.0  # one clock; a stamp is truncated to the millisecond
    assert cur.requests == 7
    assert cur.hist.count == 3
    assert cur.skew == 1
    assert cur.drops == {"big": 1, "garbage": 1, "absent": 1, "past": 1}
    # 40 + 200 + 0 (clamped), each waited at most `late` more between its stamp and its read
    assert 240.0 <= cur.hist.total_ms <= 240.0 + 2 * late, (cur.hist.total_ms, late)
    assert busy == 1  # one token, still in flight


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.binary(max_size=24), st.text(max_size=24)),
            st.one_of(st.none(), st.binary(max_size=8), st.text(max_size=8)),
        ),
        max_size=30,
    )
)
def test_any_headers_and_lengths_are_summarized_without_raising_and_every_request_counted(
    requests: list[tuple[bytes | str | None, bytes | str | None]],
) -> None:
    now = time.time()
    cur = summarize([(now, raw, length) for raw, length in requests], 1000)
    assert cur.requests == len(requests) == cur.hist.count + sum(cur.drops.values())
    assert all(0 <= k < wire.MAX_BUCKET for k in cur.hist.buckets)


def test_busy_is_the_number_of_requests_in_flight_when_the_interval_closes() -> None:
    rec = _recorder()
    for token in range(3):
        rec.begin(token, None, None)
    rec.end(0)
    assert rec.swap()[1] == 2
    rec.end(1)
    rec.end(1)  # ending twice is harmless
    rec.end(2)
    assert rec.swap()[1] == 0


@pytest.mark.parametrize(
    ("ended", "in_flight", "missed", "expected"),
    [
        ([], [], 0, 0.0),
        ([(101.0, 103.0), (102.0, 102.5)], [], 0, 2.5),  # inside the interval
        ([(90.0, 101.0)], [], 0, 1.0),  # began before: only its part in the interval counts
        ([(104.0, 106.0)], [], 0, 1.0),  # ended just after the swap: cut at the interval's end
        ([], [95.0, 103.0], 0, 7.0),  # still in flight: up to the interval's end
        ([(None, 102.0)], [], 0, 0.0),  # begun before a fork: unknown start, left out
        ([(101.0, 102.0), (101.0, 104.0)], [], 2, 8.0),  # 2 more ended than the list held
        ([(106.0, 107.0)], [], 0, 0.0),  # a clock step back: nothing negative
    ],
)
def test_busy_seconds_are_the_time_requests_were_in_flight_within_the_interval(
    ended: list[tuple[float | None, float]], in_flight: list[float], missed: int, expected: float
) -> None:
    assert busy_seconds(ended, in_flight, 100.0, 105.0, missed) == pytest.approx(expected)


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_recorder_measures_busy_time_across_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _recorder()
    clock = _Clock(1000.0)
    rec.begin(9, None, None)  # starts the flusher (it waits a minute) before the clock is fake
    rec.end(9)
    monkeypatch.setattr(publisher.time, "time", clock)
    rec.swap()  # the interval starts at 1000
    rec.begin(1, None, None)
    clock.t = 1001.0
    rec.begin(2, None, None)
    clock.t = 1003.0
    rec.end(1)  # 3 s
    clock.t = 1005.0
    cur, busy = rec.swap()  # 2 still in flight: 4 s so far
    assert (cur.busy_s, busy) == (pytest.approx(7.0), 1)
    clock.t = 1006.0
    rec.end(2)  # 1 s more, in the next interval
    clock.t = 1010.0
    cur, busy = rec.swap()
    assert (cur.busy_s, busy) == (pytest.approx(1.0), 0)
    assert rec.swap()[0].busy_s == 0.0  # idle


def test_busy_time_reaches_redis_and_the_daemon_reads_it_as_requests_in_use(
    redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _recorder(), _recorder()
    clock = _Clock(0.0)
    for rec in (a, b):
        rec.begin(9, None, None)
        rec.end(9)
    monkeypatch.setattr(publisher.time, "time", clock)
    t0 = (wire.slot_of(time.time()) - 3) * wire.SLOT_SECONDS  # a slot that is complete
    clock.t = t0
    for rec in (a, b):
        rec.swap()
    for token in range(3):  # a: 3 requests served for the whole 4 s
        a.begin(token, None, None)
    b.begin(0, None, None)  # b: 1 request served for 2 s
    clock.t = t0 + 2.0
    b.end(0)
    clock.t = t0 + 4.0
    a.publish(redis_db)
    b.publish(redis_db)
    (slot,) = slots(redis_db, "web")
    assert (slot.busy_s, slot.busy_flushes, slot.flushes) == (pytest.approx(14.0), 2, 2)
    source = RequestQueueTimeSource(redis_db, "web", 30.0, "p95")
    reading = source.sample(t0 + 7.0)  # the slot is complete; the first one published in
    assert reading.in_use == pytest.approx(14.0 / wire.SLOT_SECONDS)


def test_past_the_buffer_cap_requests_are_counted_as_overflow_not_kept() -> None:
    rec = _recorder()
    rec.MAX_BUFFERED = 3
    for _ in range(5):
        rec.begin(0, _ms_ago(20), None)
    cur, _ = rec.swap()
    assert (cur.requests, cur.hist.count, cur.drops) == (5, 3, {"overflow": 2})


def test_a_flush_adds_into_its_slot_marks_the_publisher_seen_and_sets_ttls(
    redis_db: redis.Redis,
) -> None:
    seen = wire.seen_key("web")
    redis_db.zadd(seen, {"gone:1": time.time() - 1000, "alive:1": time.time() - 10})
    rec = _recorder(keep=300.0)
    rec.begin(0, _ms_ago(25), None)
    rec.publish(redis_db)
    rec.publish(redis_db)  # an idle interval: a heartbeat
    assert totals(redis_db, "web") == {"n": 1, "f": 2, "r": 1}
    assert set(redis_db.zrange(seen, 0, -1)) == {b"alive:1", f"test:{os.getpid()}".encode()}
    keys = list(redis_db.scan_iter(f"{wire.PREFIX}web:*"))
    assert keys and all(0 < redis_db.ttl(k) <= 300 for k in keys)
    assert rec.flushes == 2


def test_redis_merges_the_histograms_of_many_processes_into_pooled_percentiles(
    redis_db: redis.Redis,
) -> None:
    groups = [[20.0] * 45, [40.0] * 45, [300.0] * 10]  # pooled p50 is 40, p95 is 300
    for i, group in enumerate(groups):
        rec = Recorder(PublisherConfig(REDIS_URL, publisher=f"web.{i}", interval=60.0))
        for ms in group:
            rec.begin(0, _ms_ago(ms), None)
        rec.publish(redis_db)
    merged = wire.merge(slots(redis_db, "web"))
    assert merged.count == 100
    assert merged.value("p50") == pytest.approx(40.0, rel=0.05)
    assert merged.value("p95") == pytest.approx(300.0, rel=0.05)


def test_samples_lost_to_a_redis_outage_are_reported_by_the_next_flush(
    redis_db: redis.Redis,
) -> None:
    down = redis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.5)
    rec = _recorder()
    for _ in range(4):
        rec.begin(0, _ms_ago(30), None)
    with pytest.raises(redis.ConnectionError):
        rec.publish(down)
    rec.begin(0, _ms_ago(30), None)
    rec.publish(redis_db)
    assert totals(redis_db, "web") == {"n": 1, "f": 1, "r": 1, "lost": 4}
    rec.publish(redis_db)
    assert totals(redis_db, "web")["lost"] == 4  # reported once


def test_the_flusher_publishes_heartbeats_on_its_own_and_a_final_flush_on_stop(
    redis_db: redis.Redis,
) -> None:
    rec = _recorder(interval=1.0)
    rec.ensure_started()
    time.sleep(1.3)
    rec.begin(0, _ms_ago(10), None)
    rec.stop()
    assert totals(redis_db, "web") == {"n": 1, "f": 2, "r": 1}
    assert redis_db.zrange(wire.seen_key("web"), 0, -1) == [f"test:{os.getpid()}".encode()]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_starts_its_own_flusher_and_publishes_under_its_own_pid(
    redis_db: redis.Redis,
) -> None:
    rec = _recorder(interval=60.0)
    rec.ensure_started()
    pid = os.fork()
    if pid == 0:  # the child: no flusher was inherited; the first request starts one
        code = 1
        try:
            if rec._thread is None:
                rec.begin(0, _ms_ago(50), None)
                rec.stop()  # the final flush
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert redis_db.zrange(wire.seen_key("web"), 0, -1) == [f"test:{pid}".encode()]
    assert totals(redis_db, "web")["n"] == 1
    rec.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Boom(Exception):
    pass


def test_the_wsgi_middleware_passes_the_apps_own_errors_through_untouched() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise Boom

    mw = wsgi.QueueTimeMiddleware(app, redis_url=REDIS_URL, env={})
    with pytest.raises(Boom):
        mw({"HTTP_X_REQUEST_START": "junk", "CONTENT_LENGTH": "x"}, lambda *a: None)
    assert mw.recorder is not None
    cur, busy = mw.recorder.swap()
    assert (cur.requests, cur.drops, busy) == (1, {"garbage": 1}, 0)  # no longer in flight
    mw.recorder.stop()


def test_without_redis_url_the_middleware_is_a_pass_through() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return [b"ok"]

    mw = wsgi.QueueTimeMiddleware(app, env={})
    assert mw.recorder is None
    assert mw({"HTTP_X_REQUEST_START": _ms_ago(5)}, lambda *a: None) == [b"ok"]


def test_the_asgi_middleware_samples_http_and_starts_the_flusher_on_lifespan() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    mw = asgi.QueueTimeMiddleware(app, redis_url=REDIS_URL, env={})
    rec = mw.recorder
    assert rec is not None

    async def noop(*_: Any) -> Any:
        return {}

    since_stamped = Stopwatch()

    async def run() -> None:
        await mw({"type": "lifespan"}, noop, noop)
        assert rec._pid == os.getpid()
        headers = [(b"x-queue-start", b"t=" + _ms_ago(80).encode()), (b"content-length", b"12")]
        await mw({"type": "http", "headers": headers}, noop, noop)
        await mw({"type": "http", "headers": [(b"x-request-start", b"nope")]}, noop, noop)
        await mw({"type": "websocket", "headers": []}, noop, noop)

    asyncio.run(run())
    cur, _ = rec.swap()
    late = since_stamped.ms() + 1.0  # one clock; a stamp is truncated to the millisecond
    assert seen == ["lifespan", "http", "http", "websocket"]
    assert (cur.requests, cur.hist.count, cur.drops) == (2, 1, {"garbage": 1})
    assert 80.0 <= cur.hist.total_ms <= 80.0 + late, (cur.hist.total_ms, late)
    rec.stop()


@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient.")
def test_fastapi_add_middleware_form_from_the_readme_samples_requests() -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    app = FastAPI()

    @app.get("/")
    def index() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(asgi.QueueTimeMiddleware, redis_url=REDIS_URL, env={})
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/", headers={"X-Request-Start": _ms_ago(30)}).status_code == 200
        layer: Any = app.middleware_stack
        while not isinstance(layer, asgi.QueueTimeMiddleware):
            layer = layer.app
        assert layer.recorder is not None
        cur, _ = layer.recorder.swap()
    assert (cur.requests, cur.hist.count) == (3, 3)
