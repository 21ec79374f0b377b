"""Fuzz: arbitrary config values and arbitrary payloads give clean, typed errors only.

Config: ``load`` raises nothing but ``ConfigError``, whatever the values (scenario 45); the lock
and alert settings likewise. Payloads: every pure parse function of the sources, the web wire
format and the platforms raises only its documented error, and what it returns is a number that
can be trusted (finite, not negative): unknown is never zero, garbage is never a value
(scenarios 9-12).
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler import alerts, registry
from autoscaler.config import load, process_prefix
from autoscaler.locks import postgres as pg_lock
from autoscaler.locks import redis as redis_lock
from autoscaler.model import Reading
from autoscaler.platforms import fly, heroku, render
from autoscaler.ports import ConfigError, PlatformError, SourceError
from autoscaler.sources import celery, dramatiq, http, request_queue_time, rq, sidekiq, sql
from autoscaler.sources._redisjobs import Malformed
from autoscaler.web import header, wire

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- config -----------------------------------------------------------------------------------

# every variable the core and the adapters declare (the strict check refuses any other name)
GLOBAL_VARS = sorted({v.name for _, v in registry.global_variables()})
PROCESS_KEYS = sorted(
    {process_prefix(p) + v.name for p in ("web", "worker") for _, v in registry.process_variables()}
)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
plausible = st.sampled_from(
    ["", " ", "0", "-1", "1e400", "nan", "inf", "5s", "10m", "1h", "99999999999999999999",
     "true", "redis", "postgres", "web,worker", "web,web", "mon-fri 08:00-18:00 min=4",
     "redis://:pw@127.0.0.1:6379/8", "http://x", "UTC", "Mars/Base", "auto", "p95", "0.0001ms"]
)  # fmt: skip
values = st.one_of(text, plausible)
envs = st.dictionaries(
    st.sampled_from(GLOBAL_VARS + PROCESS_KEYS) | st.text(max_size=12),
    values,
    max_size=12,
)


@FUZZ
@given(envs)
def test_config_parsing_raises_only_config_error(env: dict[str, str]) -> None:
    try:
        loaded = load(env)
    except ConfigError as exc:
        assert exc.problems  # it names at least one variable
        return
    for parse in (
        lambda: redis_lock.parse(loaded),
        lambda: pg_lock.parse(loaded),
        lambda: alerts.parse_after(loaded.env),
    ):
        try:
            parse()
        except ConfigError as exc:
            assert exc.problems


# ---- payloads ---------------------------------------------------------------------------------

KEYS = [
    "headers", "properties", "eta", "expires", "published_at", "timestamp", "options",
    "message_timestamp", "enqueued_at", "created_at", "queue", "name", "value", "v", "n", "b",
    "t", "s", "sum", "max", "type", "quantity", "updated_at", "id", "serviceDetails",
    "numInstances", "autoscaling", "config", "metadata", "fly_process_group", "state",
    "autoscaler_enqueued_at", "retry", "class", "body", "delivery_info", "priority",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | text
    | st.sampled_from(["2026-08-02T10:11:12Z", "2026-08-02T10:11:12.123456Z", "t=1", "1e999"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=15,
)
payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
)
NOW = 1_785_000_000.0


def trusted(reading: Reading) -> None:
    for value in (reading.value_ms, *reading.queues.values()):
        if value is not None:
            assert math.isfinite(value) and value >= 0, reading


@FUZZ
@given(payloads, st.sampled_from(http.UNITS))
def test_http_source_bodies(body: bytes, unit: str) -> None:
    try:
        reading = http.reading_from_body(body, "worker", unit)
    except SourceError:
        return
    assert reading.value_ms is not None
    trusted(reading)


slot_fields = st.dictionaries(
    st.sampled_from([b"n", b"r", b"f", b"s", b"busy", b"skew", b"keep", b"v", b"d:garbage"])
    | st.integers(0, 400).map(lambda i: str(i).encode())
    | st.binary(max_size=6),
    st.sampled_from([b"1", b"0", b"-1", b"nan", b"inf", b"1e308", b"2", b"3.5", b""])
    | st.binary(max_size=8),
    max_size=8,
)


@FUZZ
@given(st.dictionaries(st.integers(), slot_fields, max_size=4), st.none() | st.floats())
def test_request_queue_time_wire_slots(slots: dict[int, dict[bytes, bytes]], newest: Any) -> None:
    for fields in slots.values():
        with contextlib.suppress(wire.WireError):
            wire.decode_slot(fields)
    try:
        reading = request_queue_time.reading_from(
            slots, newest, now=NOW, window=30.0, aggregate="p95", where="k"
        )
    except SourceError:
        return
    trusted(reading)


@FUZZ
@given(st.one_of(st.binary(max_size=40), text))
def test_x_request_start_headers(raw: bytes | str) -> None:
    ms, _outcome = header.queue_ms(raw, NOW * 1000)
    assert math.isfinite(ms) and ms >= 0


@FUZZ
@given(payloads, text)
def test_job_payloads_of_redis_backends(raw: bytes, stamp: str) -> None:
    for parse in (
        lambda: rq.parse_enqueued_at(stamp),
        lambda: celery.timing(raw, NOW),
        lambda: celery.parse_iso(stamp, "eta"),
        lambda: dramatiq.waiting_since(raw, NOW),
        lambda: dramatiq.due_at(raw, NOW),
        lambda: sidekiq.job_time(raw, NOW),
        lambda: sidekiq.job_queue(raw),
    ):
        with contextlib.suppress(Malformed):
            parse()


@FUZZ
@given(
    st.lists(st.lists(scalars, max_size=4), max_size=4),
    st.lists(st.sampled_from(["text", "varchar", "int4", "int8", "float8", "numeric",
                              "interval", "timestamptz", "bool", "json"]), max_size=5),
)  # fmt: skip
def test_sql_source_results(rows: list[list[Any]], types: list[str]) -> None:
    try:
        reading = sql.reading_from_result(rows, types)
    except SourceError:
        return
    trusted(reading)


@FUZZ
@given(json_values)
def test_platform_answers(body: Any) -> None:
    for parse in (
        lambda: heroku.parse_formation(body),
        lambda: render.parse_service(body),
        lambda: fly.parse_machines(body),
    ):
        with contextlib.suppress(PlatformError):
            parse()
