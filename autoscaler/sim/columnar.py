"""Reading a request trace with pyarrow's columnar CSV reader (the ``sim`` extra).

A month of seconds (2.4 million rows) parses in C in a fraction of the time the standard
library takes. This reader only ever accepts what the pure-Python reader in
``autoscaler.sim.traces`` accepts, and gives the same trace's columns: anything it is not sure of
(a type it does not expect, a null, a negative or non-finite number, an irregular time axis,
columns other than the trace's own, a parse error) returns ``None``, and the pure-Python reader
reads the file and names the line and column that are wrong.
"""

from __future__ import annotations

import math
import re
from array import array
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

#: a trace's start (epoch s), bin width (s), counts and service times (``traces.Trace``'s)
Columns = tuple[float, float, "array[float]", "array[float] | None"]
_COLUMNS = ("time", "requests", "service_ms")
#: a carriage return not followed by a line feed (one scan; counting ``\r`` and ``\r\n``
#: took two, twice the time on a month of seconds)
_LONE_CR = re.compile(rb"\r(?!\n)")


def read(header: list[str], raw: bytes) -> Columns | None:
    """The trace in ``raw`` (the decompressed file, header line first), or ``None`` when the
    pure-Python reader must decide."""
    if len(set(header)) != len(header) or not set(header) <= set(_COLUMNS):
        return None
    if b"\r" in raw and _LONE_CR.search(raw) is not None:
        return None  # a lone carriage return: line breaks are the pure reader's to judge
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(raw),
            read_options=pa_csv.ReadOptions(skip_rows=1, column_names=header),
            parse_options=pa_csv.ParseOptions(quote_char=False),
            convert_options=pa_csv.ConvertOptions(
                null_values=[""], true_values=[], false_values=[], strings_can_be_null=False
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows < 2:
        return None
    try:
        axis = _time_axis(_flat(table, "time"))
        counts = _counts(_flat(table, "requests"))
        service = _service(_flat(table, "service_ms")) if "service_ms" in header else None
    except pa.ArrowException:
        return None
    if axis is None or counts is None or ("service_ms" in header and service is None):
        return None
    return axis[0], axis[1], counts, service


def _flat(table: Any, name: str) -> Any:
    """One column as one array (the reader returns it in chunks)."""
    return table.column(name).combine_chunks()


def _doubles(values: Any) -> array[float]:
    """A float64 array without nulls as an ``array('d')`` (one copy of its buffer)."""
    out: array[float] = array("d")
    data = values.buffers()[1]
    start = values.offset * 8
    out.frombytes(memoryview(data)[start : start + 8 * len(values)])
    return out


def _time_axis(column: Any) -> tuple[float, float] | None:
    """Start and width of a regular time column, as ``traces._time_axis`` finds them."""
    kind = column.type
    if column.null_count:
        return None
    if pa.types.is_timestamp(kind):
        if kind.unit != "s":
            return None  # fractions of a second: the pure reader's
        seconds = pc.cast(column, pa.int64())
        steps = pc.min_max(pc.pairwise_diff(seconds)).as_py()
        if steps["min"] != steps["max"] or steps["min"] <= 0:
            return None
        return float(seconds[0].as_py()), float(steps["min"])
    if not _numeric(column):
        return None
    epochs = pc.cast(column, pa.float64())
    if not pc.all(pc.is_finite(epochs)).as_py():
        return None
    first, second = epochs[0].as_py(), epochs[1].as_py()
    width = second - first
    steps = pc.min_max(pc.pairwise_diff(epochs)).as_py()
    if width <= 0 or steps["max"] - steps["min"] > 1e-6 * max(1.0, width):
        return None
    return first, width


def _counts(column: Any) -> array[float] | None:
    """Arrivals per bin: finite numbers of 0 or more."""
    if column.null_count or not _numeric(column):
        return None
    values = pc.cast(column, pa.float64())
    low = pc.min(values).as_py()
    if not pc.all(pc.is_finite(values)).as_py() or low is None or not low >= 0:
        return None
    return _doubles(values)


def _service(column: Any) -> array[float] | None:
    """Service times per bin: above 0 and finite, NaN where the cell is empty."""
    if not _numeric(column):
        return None  # an all-empty column, or text: the pure reader's
    values = pc.cast(column, pa.float64())
    present = values.drop_null()
    if len(present) and (
        not pc.all(pc.is_finite(present)).as_py() or not pc.min(present).as_py() > 0
    ):
        return None
    return _doubles(pc.fill_null(values, math.nan))


def _numeric(column: Any) -> bool:
    return bool(pa.types.is_int64(column.type) or pa.types.is_float64(column.type))
