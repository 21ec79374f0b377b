"""The pure layers shared by the PostgreSQL job sources, by tables: config parsing and probe rows
to a reading (the ``sql`` and ``http`` sources' own are in their folders)."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler import config
from autoscaler.model import Metric
from autoscaler.ports import ConfigError, SourceError
from autoscaler.sources import _pgjobs

from .pgjobs import env_for

URL = "postgresql://postgres:s3cr3tpassword@db.example:6543/app"


def settings(source: str, **extra: str) -> config.Settings:
    return config.load(env_for(source, URL, **extra))


# --- shared PostgreSQL config ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        ({}, (URL, 3.0, None, 20)),
        ({"queues": "b,a,b"}, (URL, 3.0, ("b", "a"), 20)),
        ({"sql_timeout": "500ms", "queue_discovery_limit": "5"}, (URL, 0.5, None, 5)),
        (
            {"database_url": "postgresql://q@queue-db/x"},
            ("postgresql://q@queue-db/x", 3.0, None, 20),
        ),
    ],
)
def test_config_is_read(extra: dict[str, str], expect: tuple[Any, ...]) -> None:
    s = settings("good_job", **extra)
    c = _pgjobs.parse_config(s.env, s.processes["worker"], s.glob.database_url)
    assert (c.url, c.timeout_s, c.queues, c.discovery_limit) == expect


@pytest.mark.parametrize(
    ("extra", "var"),
    [
        ({"sql_timeout": "soon"}, "AUTOSCALER_WORKER_SQL_TIMEOUT"),
        ({"sql_timeout": "0"}, "AUTOSCALER_WORKER_SQL_TIMEOUT"),
        ({"sql_timeout": "2m"}, "AUTOSCALER_WORKER_SQL_TIMEOUT"),
        ({"queue_discovery_limit": "0"}, "AUTOSCALER_WORKER_QUEUE_DISCOVERY_LIMIT"),
        ({"queue_discovery_limit": "many"}, "AUTOSCALER_WORKER_QUEUE_DISCOVERY_LIMIT"),
        ({"database_url": "postgresql://h/db?nonsense=1"}, "AUTOSCALER_WORKER_DATABASE_URL"),
    ],
)
def test_bad_config_names_the_variable(extra: dict[str, str], var: str) -> None:
    with pytest.raises(ConfigError) as info:  # by load, or by the source's own parse
        s = settings("good_job", **extra)
        _pgjobs.parse_config(s.env, s.processes["worker"], s.glob.database_url)
    assert var in info.value.problems


def test_a_missing_database_url_is_named() -> None:
    s = config.load(env_for("solid_queue", None))
    with pytest.raises(ConfigError) as info:
        _pgjobs.parse_config(s.env, s.processes["worker"], s.glob.database_url)
    assert "AUTOSCALER_WORKER_SOURCE=solid_queue" in info.value.problems["DATABASE_URL"]


def test_messages_name_the_host_never_the_password() -> None:
    assert _pgjobs.where(URL) == "db.example:6543/app"


# --- probe rows -> reading -------------------------------------------------------------------

Row = tuple[Any, ...]


def read(rows: list[Row], limit: int | None = None, has_busy: bool = True) -> Any:
    return _pgjobs.reading_from_rows("good_job", rows, limit=limit, has_busy=has_busy)


def test_the_signal_is_the_max_over_queues_with_each_queue_shown() -> None:
    r = read([("a", 1, 1.5, 0, 3, 1, False), ("b", 2, None, 0, 0, 0, False)])
    assert r.metric is Metric.JOB_LATENCY
    assert (r.value_ms, r.queues, r.depth, r.samples, r.busy) == (
        1500.0,
        {"a": 1500.0, "b": 0.0},
        3,
        3,
        1,
    )


def test_no_queue_at_all_is_zero() -> None:
    r = read([])
    assert (r.value_ms, r.queues, r.depth) == (0.0, {}, 0)


def test_a_negative_age_from_an_app_clock_ahead_reads_as_zero() -> None:
    assert read([("a", 1, -0.02, 0, 1, 0, False)]).value_ms == 0.0


def test_a_paused_queue_is_shown_not_counted() -> None:
    r = read([("a", 1, 9.0, 0, 1, 0, True), ("b", 2, 2.0, 0, 1, 0, False)])
    assert (r.value_ms, r.queues["a"]) == (2000.0, 9000.0)
    assert "paused queue(s) not counted: a" in r.warning


def test_the_queue_beyond_the_discovery_cap_is_dropped_with_a_warning() -> None:
    r = read([("a", 1, 1.0, 0, 1, 0, False), ("b", 2, 5.0, 0, 1, 0, False)], limit=1)
    assert r.queues == {"a": 1000.0}
    assert "more than 1 queues found" in r.warning


def test_a_capped_depth_says_so() -> None:
    r = read([("a", 1, 1.0, 0, _pgjobs.DEPTH_CAP, 0, False)])
    assert f"counted up to {_pgjobs.DEPTH_CAP}" in r.warning


def test_busy_is_none_when_the_backend_does_not_record_it() -> None:
    assert read([("a", 1, 1.0, 0, 1, None, False)], has_busy=False).busy is None


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (("a", 1, float("nan"), 0, 1, 0, False), "queue a: the age is nan"),
        (("a", 1, float("inf"), 0, 1, 0, False), "queue a: the age is inf"),
        (("a", 1, "12", 0, 1, 0, False), "queue a: the age is not a number"),
        (("a", 1, 1.0, 2, 3, 0, False), "queue a: 2 due job.s. without a readable"),
        (("a", 1, 1.0, 0, None, 0, False), "queue a: the depth is not a count"),
        (("a", 1, 1.0, 0, -1, 0, False), "queue a: the depth is not a count"),
        (("a", 1, 1.0, 0, 1, None, False), "queue a: the running count is not a count"),
        (("a", 1, 1.0), "returned 3 columns"),
    ],
)
def test_rows_it_cannot_trust_fail_naming_the_queue(row: Row, why: str) -> None:
    with pytest.raises(SourceError, match=why):
        read([row])
