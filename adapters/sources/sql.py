"""Source ``sql``: job latency from an operator-supplied query, ``AUTOSCALER_<P>_SQL``, for job
tables this daemon does not know (Que, Delayed::Job, a home-grown queue).

The query runs on ``DATABASE_URL`` (or ``AUTOSCALER_<P>_DATABASE_URL``) in a READ ONLY
transaction with ``statement_timeout`` = ``AUTOSCALER_<P>_SQL_TIMEOUT`` (default 3s) and
``TimeZone=UTC``. It is sent as a single statement without parameters (so ``%`` is literal and
a second statement is refused). Two shapes are accepted:

- one row: ``age [, depth [, busy]]``;
- per queue, when the first column is text: rows of ``queue, age [, depth [, busy]]``, zero
  rows meaning that no queue has a due job (0).

``age`` is the age of the oldest *due* waiting job, in seconds (a number) or as an
``interval``; 0 when there is none. ``depth`` is the number of due waiting jobs and ``busy``
the number of running jobs (whole numbers, or NULL when not known). NULL, NaN, negative or
non-numeric ages make the poll fail with the reason: unknown is never zero, so write
``COALESCE(..., 0)`` for the empty case. Compute the age in the query with the database's
``now()`` so that no clock skew enters it.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import Field

from autoscaler.configkit import DaemonConfig, ProcessConfig, SourceAdapter, Text, read
from autoscaler.model import Metric, Reading
from autoscaler.ports import SourceError
from autoscaler.redact import redact
from autoscaler.sources._pgjobs import PgClient, PgSettings, parse_config

_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "char", "character varying"}


def _age_s(value: Any, where: str) -> float:
    if value is None:
        raise SourceError(
            f"{where}: the age is NULL (return 0 when no job is due, e.g. COALESCE(..., 0))"
        )
    if isinstance(value, datetime.timedelta):
        age = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise SourceError(f"{where}: the age is not a number of seconds ({value!r})")
    else:
        age = float(value)
    if not math.isfinite(age):
        raise SourceError(f"{where}: the age is {age} (not a finite number)")
    if age < 0:
        raise SourceError(
            f"{where}: the age is negative ({age:g} s): the query counts a job that is not due "
            "yet (filter on due time <= now())"
        )
    return age


def _count(value: Any, where: str, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"{where}: {what} is not a whole number of jobs ({value!r})")
    return value


def _sum(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v or 0 for v in values)


def reading_from_result(rows: Sequence[Sequence[Any]], types: Sequence[str]) -> Reading:
    """The reading for the query's result (``types``: the columns' PostgreSQL type names).

    Pure; raises ``SourceError`` on any shape or value it cannot trust.
    """
    per_queue = bool(types) and types[0] in _TEXT_TYPES
    lo, hi = (2, 4) if per_queue else (1, 3)
    if not lo <= len(types) <= hi:
        shape = "queue, age [, depth [, busy]]" if per_queue else "age [, depth [, busy]]"
        raise SourceError(f"the query returned {len(types)} column(s); expected {shape}")
    if not per_queue:
        if len(rows) != 1:
            raise SourceError(
                f"the query returned {len(rows)} rows; expected exactly one "
                "(or rows of queue, age with a text first column)"
            )
        row = list(rows[0]) + [None] * (3 - len(rows[0]))
        age = _age_s(row[0], "the query")
        depth = _count(row[1], "the query", "the depth")
        busy = _count(row[2], "the query", "the busy count")
        samples = depth if depth is not None else 1
        return Reading(Metric.JOB_LATENCY, age * 1000.0, samples, 0.0, {}, depth, busy)

    queues: dict[str, float] = {}
    depths: list[int | None] = []
    busies: list[int | None] = []
    for raw in rows:
        row = list(raw) + [None] * (4 - len(raw))
        if row[0] is None:
            raise SourceError("the query returned a row whose queue name is NULL")
        name = str(row[0])
        where = f"queue {name}"
        if name in queues:
            raise SourceError(f"{where}: returned twice")
        queues[name] = _age_s(row[1], where) * 1000.0
        depths.append(_count(row[2], where, "the depth"))
        busies.append(_count(row[3], where, "the busy count"))
    depth = _sum(depths) if len(types) >= 3 else None
    busy = _sum(busies) if len(types) >= 4 else None
    samples = depth if depth is not None else len(rows)
    return Reading(
        Metric.JOB_LATENCY, max(queues.values(), default=0.0), samples, 0.0, queues, depth, busy
    )


class SqlSource:
    metric = Metric.JOB_LATENCY

    def __init__(self, client: PgClient, query: str, var: str) -> None:
        self.client = client
        self.query = query
        self.var = var

    def sample(self, now: float) -> Reading:
        """Run the query once; ``now`` is unused: ages come from the database's clock."""
        rows, types = self.client.query(self.query, None, self.var)
        try:
            return reading_from_result(rows, types)
        except SourceError as exc:
            raise SourceError(redact(f"{self.var}: {exc}")) from None

    def check(self) -> str:
        reading = self.sample(0.0)
        return f"{self.var} on {self.client.where}: {reading.value_ms or 0.0:.0f} ms"

    def close(self) -> None:
        self.client.close()


class SqlSettings(PgSettings):
    """The ``sql`` source's variables (per process)."""

    sql: Text = Field(
        description="a query that returns the age in seconds of the oldest due job (filter "
        "queues in the query)"
    )


def build(
    config: DaemonConfig, process: ProcessConfig, own: SqlSettings | None = None
) -> SqlSource:
    own = own or read(SqlSettings, config.env, process.var_prefix)
    pg = parse_config(config.env, process, config.glob.database_url, own)
    client = PgClient(pg.url, pg.timeout_s, pg.timeout_var)
    return SqlSource(client, own.sql, f"{process.var_prefix}SQL")


ADAPTER = SourceAdapter(SqlSettings, build, Metric.JOB_LATENCY)
