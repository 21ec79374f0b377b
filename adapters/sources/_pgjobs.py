"""Plumbing shared by the PostgreSQL job sources (``procrastinate``, ``good_job``,
``solid_queue``, ``sql``).

- ``parse_config``: the pure config step (database URL, timeout, queues, discovery cap).
- ``PgClient``: one psycopg connection, kept open between polls and reopened after a failure.
  Every poll is one READ ONLY transaction whose first statement sets a local
  ``statement_timeout`` and ``TimeZone=UTC`` (and, for the job probes, turns sequential and
  bitmap scans, sorts and JIT off); both are sent in one pipeline with the query, so a poll
  costs one round trip. Nothing is set on the session, so it works behind a
  transaction-pooling PgBouncer too. Errors become ``SourceError`` (redacted), never a value.
- ``job_statement``: wraps a backend's per-queue probe in the queue list, either the configured
  ``QUEUES`` or a discovery (a "loose index scan" that walks an index on ``queue_name`` one
  distinct name at a time, capped, alphabetical, so the choice is deterministic).
- ``reading_from_rows``: the pure step from the probe's rows to a ``Reading``.

Ages are computed by the database (``now()`` minus the job's due time), so the daemon's clock
plays no part.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from pydantic import Field

from autoscaler.configkit import (
    DaemonConfig,
    Duration,
    EnvSettings,
    ProcessConfig,
    SourceAdapter,
    Url,
    read,
)
from autoscaler.model import Metric, Reading
from autoscaler.ports import ConfigError, SourceError
from autoscaler.redact import redact, register_secret
from autoscaler.sources._queues import QueueSettings

DEFAULT_TIMEOUT_S = 3.0
DEFAULT_DISCOVERY_LIMIT = 20
#: due jobs are counted up to this many per queue, so that a count costs the same on any backlog
DEPTH_CAP = 100
#: due jobs read across all queues at the head of an id-ordered table (procrastinate)
HEAD = 2_000
#: errors that mean the tables are not the layout we know (missing table, column, type, value)
_LAYOUT_ERRORS = (
    pgerrors.UndefinedTable,
    pgerrors.UndefinedColumn,
    pgerrors.UndefinedObject,
    pgerrors.UndefinedFunction,
    pgerrors.InvalidTextRepresentation,
    pgerrors.DatatypeMismatch,
)


class PgSettings(EnvSettings):
    """The variables every PostgreSQL source reads (per process, ``AUTOSCALER_<P>_``)."""

    database_url: Url | None = Field(
        None,
        description="a different database for this process (Rails 8 puts Solid Queue in a "
        "database of its own)",
        json_schema_extra={"default": "`DATABASE_URL`"},
    )
    sql_timeout: Annotated[float, Duration(0.1, 60.0)] = Field(
        DEFAULT_TIMEOUT_S,
        description="statement timeout of each poll; the connect timeout is this, rounded up, "
        "and at least 2 s",
    )


class PgJobSettings(PgSettings, QueueSettings):
    """A PostgreSQL job table source (procrastinate, good_job, solid_queue)."""


@dataclass(frozen=True, slots=True)
class PgConfig:
    url: str
    url_var: str  # the variable the URL came from, for messages
    timeout_s: float
    queues: tuple[str, ...] | None  # None: discover
    discovery_limit: int
    timeout_var: str


def parse_config(
    env: Mapping[str, str],
    process: ProcessConfig,
    database_url: str | None,
    own: PgSettings | None = None,
) -> PgConfig:
    """The database to read and the process's own variables. Pure; raises ``ConfigError``.

    ``AUTOSCALER_<P>_DATABASE_URL`` overrides ``DATABASE_URL`` for this process.
    """
    p = process.var_prefix
    own = own or read(PgJobSettings, env, p)
    url_var = f"{p}DATABASE_URL" if own.database_url else "DATABASE_URL"
    url = own.database_url or database_url or ""
    if not url:
        raise ConfigError({"DATABASE_URL": f"is required by {p}SOURCE={process.source}"})
    register_secret(url)
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError({url_var: redact(f"is not a PostgreSQL URL: {exc}")}) from None
    queues, limit = None, DEFAULT_DISCOVERY_LIMIT
    if isinstance(own, PgJobSettings):
        queues = tuple(dict.fromkeys(own.queues)) if own.queues else None
        limit = own.queue_discovery_limit
    return PgConfig(url, url_var, own.sql_timeout, queues, limit, f"{p}SQL_TIMEOUT")


def where(url: str) -> str:
    """``host:port/dbname`` of a URL, for messages (never the password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the database"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return redact(f"{host}:{port}/{info.get('dbname') or ''}")


#: the settings of every poll's transaction (``true``: for this transaction only)
_BASICS = (
    "SELECT set_config('statement_timeout', %(timeout)s, true), set_config('TimeZone', 'UTC', true)"
)
#: and for the job probes: plain index scans in index order only (see ``PgClient.query``); a
#: disabled plan kind counts as a huge cost, which would set off JIT compilation (hundreds of
#: milliseconds) for a probe that runs in a few
_OFF = ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort", "jit")
_PLANNER = _BASICS + "".join(f", set_config('{name}', 'off', true)" for name in _OFF)


class PgClient:
    """One connection, one read-only transaction with a statement timeout per query."""

    def __init__(self, url: str, timeout_s: float, timeout_var: str) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.timeout_var = timeout_var
        self.timeout_ms = f"{int(timeout_s * 1000)}ms"
        self.where = where(url)
        self._conn: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(2, math.ceil(self.timeout_s)),  # libpq's floor is 2 s
            application_name="autoscaler",
            # a peer that vanishes without closing is noticed too, not waited on forever
            keepalives=1,
            keepalives_idle=max(1, int(self.timeout_s)),
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=int(self.timeout_s * 1000) + 1000,
        )
        conn.read_only = True  # every transaction psycopg begins is BEGIN READ ONLY
        self._conn = conn
        return conn

    def query(
        self,
        statement: sql.Composed | sql.SQL | str,
        params: Mapping[str, Any] | None,
        what: str,
        *,
        index_scans: bool = False,
        layout_hint: str = "",
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Run one statement read-only; return its rows and column type names.

        ``what`` names what is being read (e.g. ``good_job queues default, mail``) and prefixes
        every error. ``index_scans`` steers the planner, for this transaction only, away from
        sequential and bitmap scans and from sorts: the job probes are written for plain index
        scans in index order, which a ``LIMIT`` stops early, whereas a bitmap scan or a sort
        reads every entry of a queue first and a sequential scan reads the table, however cheap
        the planner's statistics make them look. ``layout_hint`` ends the message of an
        unknown table layout (which versions are read, what to do).
        Raises ``SourceError``.
        """
        try:
            conn = self._connect()
            with conn.pipeline(), conn.transaction():
                conn.execute(_PLANNER if index_scans else _BASICS, {"timeout": self.timeout_ms})
                cur = conn.execute(statement, params)
                rows = cur.fetchall()
                types = [_type_name(conn, col.type_code) for col in cur.description or ()]
        except pgerrors.QueryCanceled:
            raise SourceError(
                f"{what}: the query took longer than {self.timeout_s:g}s ({self.timeout_var}) "
                f"on {self.where}"
            ) from None
        except _LAYOUT_ERRORS as exc:
            hint = f" ({layout_hint})" if layout_hint else ""
            raise SourceError(
                redact(f"{what}: unknown table layout on {self.where}: {_first_line(exc)}{hint}")
            ) from None
        except psycopg.OperationalError as exc:
            self.close()
            raise SourceError(
                redact(f"{what}: cannot read {self.where}: {_first_line(exc)}")
            ) from None
        except psycopg.Error as exc:
            raise SourceError(
                redact(f"{what}: query failed on {self.where}: {_first_line(exc)}")
            ) from None
        return rows, types

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _type_name(conn: psycopg.Connection[Any], oid: int) -> str:
    info = conn.adapters.types.get(oid)
    return info.name if info is not None else str(oid)


# --- the queue list around a backend's probe ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """What a backend contributes: where to discover queue names and how to probe one queue.

    ``discover_table``/``discover_where``: a table with a btree index whose leading column is
    ``queue_name`` (and whose partial-index predicate is ``discover_where``, if any).
    ``probe``: a ``SELECT`` over ``chosen c`` (columns ``q``, ``n``), optionally preceded by
    more common table expressions (``, name AS (...)``), returning, per queue:
    ``queue, n, age_s, unknown, depth, busy, paused`` where ``age_s`` is the age in seconds of
    the oldest due waiting job (NULL when none), ``unknown`` the number of due jobs whose due
    time could not be read, ``depth`` due waiting jobs (capped at ``%(depth_cap)s``), ``busy``
    running jobs (NULL when the backend does not record them), ``paused`` whether the backend
    has the queue paused.
    """

    discover_table: str
    discover_where: str
    probe: str
    #: said after an unknown-layout error: the versions whose tables are read, what to do
    hint: str = ""


def job_statement(layout: Layout, queues: Sequence[str] | None) -> sql.Composed:
    """The one statement of a poll: the queue list (configured or discovered), then the probe."""
    chosen: sql.Composable
    if queues is not None:
        chosen = sql.SQL(
            "WITH chosen(q, n) AS ("
            "SELECT q, n FROM unnest(%(queues)s::text[]) WITH ORDINALITY AS u(q, n)) "
        )
    else:
        cond = sql.SQL(layout.discover_where or "TRUE")
        table = sql.SQL(layout.discover_table)
        chosen = sql.SQL(
            "WITH RECURSIVE found(q, n) AS ("
            "(SELECT queue_name::text, 1 FROM {table} WHERE {cond} ORDER BY queue_name LIMIT 1)"
            " UNION ALL "
            "SELECT (SELECT t.queue_name::text FROM {table} t WHERE {cond} AND t.queue_name > f.q"
            " ORDER BY t.queue_name LIMIT 1), f.n + 1 FROM found f WHERE f.q IS NOT NULL"
            "), chosen(q, n) AS ("
            "SELECT q, n FROM found WHERE q IS NOT NULL LIMIT %(limit)s + 1) "
        ).format(table=table, cond=cond)
    return sql.Composed([chosen, sql.SQL(layout.probe)])


def statement_params(queues: Sequence[str] | None, limit: int, scan: int = 100) -> dict[str, Any]:
    return {"queues": list(queues) if queues is not None else None, "limit": limit,
            "depth_cap": DEPTH_CAP, "scan": scan, "head": HEAD}  # fmt: skip


def describe(source: str, queues: Sequence[str] | None) -> str:
    if queues is None:
        return f"{source} (discovering queues)"
    return f"{source} queue{'s' if len(queues) > 1 else ''} {', '.join(queues)}"


# --- rows to a reading (pure) --------------------------------------------------------------------


def _number(value: Any, queue: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise SourceError(f"queue {queue}: {what} is not a number ({value!r})")
    number = float(value)
    if not math.isfinite(number):
        raise SourceError(f"queue {queue}: {what} is {number} (not a finite number)")
    return number


def _count(value: Any, queue: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"queue {queue}: {what} is not a count ({value!r})")
    return value


def reading_from_rows(
    source: str,
    rows: Sequence[Sequence[Any]],
    *,
    limit: int | None,
    has_busy: bool,
    limit_var: str = "QUEUE_DISCOVERY_LIMIT",
    queues_var: str = "QUEUES",
) -> Reading:
    """Turn the probe's rows (``queue, n, age_s, unknown, depth, busy, paused``) into a reading.

    ``limit`` is the discovery cap (``None`` when the queues were configured): a row whose
    ordinal ``n`` is beyond it only tells that more queues exist. Raises ``SourceError`` naming
    the queue on anything that is not a clean number: unknown is never zero.
    """
    per_queue: dict[str, float] = {}
    counted: list[float] = []
    depth = 0
    busy = 0
    notes: list[str] = []
    paused: list[str] = []
    capped: list[str] = []
    over = False
    for row in sorted(rows, key=lambda r: int(r[1])):
        if len(row) != 7:
            raise SourceError(f"{source}: the probe returned {len(row)} columns, expected 7")
        queue, n, age, unknown, depth_q, busy_q, is_paused = row
        queue = str(queue)
        if limit is not None and int(n) > limit:
            over = True
            continue
        if _count(unknown, queue, "unknown") > 0:
            raise SourceError(
                f"queue {queue}: {unknown} due job(s) without a readable enqueue or due time"
            )
        ms = 0.0 if age is None else max(0.0, _number(age, queue, "the age")) * 1000.0
        per_queue[queue] = ms
        d = _count(depth_q, queue, "the depth")
        depth += d
        if d >= DEPTH_CAP:
            capped.append(queue)
        if has_busy:
            busy += _count(busy_q, queue, "the running count")
        if is_paused:
            paused.append(queue)
        else:
            counted.append(ms)
    if over:
        notes.append(
            f"more than {limit} queues found: only the first {limit} by name are probed "
            f"(set {queues_var}, or raise {limit_var})"
        )
    if paused:
        notes.append(f"paused queue(s) not counted: {', '.join(paused)}")
    if capped:
        notes.append(f"due jobs counted up to {DEPTH_CAP} in: {', '.join(capped)}")
    return Reading(
        Metric.JOB_LATENCY,
        max(counted, default=0.0),
        samples=depth,
        age_s=0.0,
        queues=per_queue,
        depth=depth,
        busy=busy if has_busy else None,
        warning="; ".join(notes) or None,
    )


def table_adapter(
    backend: str, layout: Layout, source: type[JobTableSource] | None = None
) -> SourceAdapter[PgJobSettings]:
    """A job table source's ``ADAPTER``: its ``layout`` read by ``source`` (``JobTableSource``)."""
    kind = source or JobTableSource

    def build(
        config: DaemonConfig, process: ProcessConfig, own: PgJobSettings | None = None
    ) -> JobTableSource:
        pg = parse_config(config.env, process, config.glob.database_url, own)
        return kind(backend, layout, pg, process.var_prefix)

    return SourceAdapter(PgJobSettings, build, Metric.JOB_LATENCY)


class JobTableSource:
    """A source that reads a job library's own tables with one statement per poll."""

    metric = Metric.JOB_LATENCY

    def __init__(self, source: str, layout: Layout, config: PgConfig, var_prefix: str, *,
                 has_busy: bool = True) -> None:  # fmt: skip
        self.source = source
        self.config = config
        self.client = PgClient(config.url, config.timeout_s, config.timeout_var)
        self.statement = job_statement(layout, config.queues)
        self.params = statement_params(config.queues, config.discovery_limit)
        self.has_busy = has_busy
        self.layout_hint = layout.hint
        self.var_prefix = var_prefix
        self.what = describe(source, config.queues)

    def sample(self, now: float) -> Reading:
        """Poll once; ``now`` is unused: ages come from the database's clock."""
        rows, _ = self.client.query(
            self.statement, self.params, self.what, index_scans=True, layout_hint=self.layout_hint
        )
        try:
            return reading_from_rows(
                self.source,
                rows,
                limit=None if self.config.queues is not None else self.config.discovery_limit,
                has_busy=self.has_busy,
                limit_var=f"{self.var_prefix}QUEUE_DISCOVERY_LIMIT",
                queues_var=f"{self.var_prefix}QUEUES",
            )
        except SourceError as exc:
            raise SourceError(redact(f"{self.source}: {exc}")) from None

    def check(self) -> str:
        reading = self.sample(0.0)
        return (
            f"{self.source} on {self.client.where}: {len(reading.queues)} queue(s), "
            f"{reading.depth} due job(s), oldest {reading.value_ms or 0.0:.0f} ms"
        )

    def close(self) -> None:
        self.client.close()
