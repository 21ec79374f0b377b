"""The ``sql`` source's pure layer, by table: an operator query's result to a reading."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from autoscaler.ports import SourceError
from autoscaler.sources import sql

Row = tuple[Any, ...]


@pytest.mark.parametrize(
    ("rows", "types", "expect"),
    [
        ([(0,)], ["int4"], (0.0, 1, None, None, {})),
        ([(Decimal("2.5"),)], ["numeric"], (2500.0, 1, None, None, {})),
        ([(datetime.timedelta(seconds=3),)], ["interval"], (3000.0, 1, None, None, {})),
        ([(1.0, 4, 2)], ["float8", "int8", "int8"], (1000.0, 4, 4, 2, {})),
        ([(1.0, Decimal(4), None)], ["float8", "numeric", "int8"], (1000.0, 4, 4, None, {})),
        ([], ["text", "float8"], (0.0, 0, None, None, {})),
        (
            [("a", 1.0, 2), ("b", 3.0, 1)],
            ["text", "float8", "int8"],
            (3000.0, 3, 3, None, {"a": 1000.0, "b": 3000.0}),
        ),
    ],
)
def test_sql_results(rows: list[Row], types: list[str], expect: tuple[Any, ...]) -> None:
    r = sql.reading_from_result(rows, types)
    assert (r.value_ms, r.samples, r.depth, r.busy, dict(r.queues)) == expect


def test_a_queue_returned_twice_fails() -> None:
    with pytest.raises(SourceError, match="queue a: returned twice"):
        sql.reading_from_result([("a", 1.0), ("a", 2.0)], ["text", "float8"])
