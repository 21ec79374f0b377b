"""The ``http`` source's pure layer, by table: a HireFire body to a reading, and its config."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler import config
from autoscaler.sources import http
from tests.sources.pgjobs import env_for


@pytest.mark.parametrize(
    ("body", "unit", "expect"),
    [
        (b'[{"name": "worker", "value": 2}]', "latency", (2000.0, None)),
        (b'[{"name": "worker", "value": 2.5}]', "latency", (2500.0, None)),
        (b'[{"name": "worker", "value": 250}]', "latency_ms", (250.0, None)),
        (b'[{"name": "worker", "value": 7}]', "size", (7000.0, 7)),
        (b'[{"name": "web", "value": 99}, {"name": "worker", "value": 0}]', "latency", (0.0, None)),
    ],
)
def test_hirefire_bodies(body: bytes, unit: str, expect: tuple[Any, ...]) -> None:
    r = http.reading_from_body(body, "worker", unit)
    assert (r.value_ms, r.depth) == expect


def test_http_config_keeps_the_origin_for_messages() -> None:
    s = config.load(
        env_for("http", None, url="https://app.example/hirefire/0123456789abcdef0/info")
    )
    c = http.parse_config(s.env, s.processes["worker"])
    assert (c.origin, c.unit, c.timeout_s, c.name) == (
        "https://app.example",
        "latency",
        3.0,
        "worker",
    )
