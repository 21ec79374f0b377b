"""One poll across 20 queues for each PostgreSQL job source (and the sql and http sources),
on a small table and on a table of a million jobs.

    .venv/bin/python benchmarks/bench_pg_sources.py [--rows 1000000] [--polls 30]

Needs the local PostgreSQL (database ``test``); works in schemas ``t_pgjobs_bench_*`` that it
drops at the end. Layouts: procrastinate's own schema (applied by procrastinate), GoodJob 4 and
Solid Queue 1 from ``tests/sources/layouts``. For each backend and data set it prints the
median and slowest poll (one statement, 20 queues configured), a poll with queue discovery, and
what EXPLAIN (ANALYZE, BUFFERS) says of the 20-queue probe: the buffers it touched and whether
any job table was read by a sequential scan. Scenarios:

- ``small``: 10 due jobs;
- ``backlog``: ``--rows`` due jobs waiting, spread over the 20 queues;
- ``history``: ``--rows`` finished jobs and 10 due ones (a table that keeps its history);
- ``skewed``: ``--rows`` due jobs in one queue, enqueued before 10 jobs in each of the 19
  others (the probe of a small queue must not walk the big one);
- ``skewed+index`` (procrastinate): the same with the index the README suggests.
"""

from __future__ import annotations

import argparse
import http.server
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoscaler import config  # noqa: E402
from autoscaler.ports import Source  # noqa: E402
from autoscaler.registry import build_source  # noqa: E402

BASE = "postgresql://postgres@127.0.0.1:5432/test"
QUEUES = [f"q{i:02d}" for i in range(20)]
LAYOUTS = ROOT / "tests" / "sources" / "layouts"
#: the tables that grow with the number of jobs (claimed executions and pauses stay small)
JOB_TABLES = re.compile(
    r"Seq Scan on (procrastinate_jobs|procrastinate_events|good_jobs"
    r"|solid_queue_(?:jobs|ready_executions|scheduled_executions))\b"
)

Loader = Callable[[psycopg.Connection[Any], str, int], None]


def url(schema: str) -> str:
    return f"{BASE}?options=-csearch_path%3D{schema}"


def make(source: str, dsn: str | None, **extra: str) -> Source:
    env = {"AUTOSCALER_PROCESSES": "worker", "AUTOSCALER_WORKER_SOURCE": source,
           **{f"AUTOSCALER_WORKER_{k.upper()}": v for k, v in extra.items()}}  # fmt: skip
    if dsn:
        env["DATABASE_URL"] = dsn
    settings = config.load(env)
    return build_source(settings, settings.processes["worker"])


def polls(source: Source, n: int) -> tuple[float, float]:
    source.sample(time.time())  # connect first: the daemon keeps its connection
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        source.sample(time.time())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


# --- loaders: (conn, scenario, rows) ------------------------------------------------------------

#: the optional index the README suggests (procrastinate has none on (queue_name, id))
PROCRASTINATE_INDEX = (
    "CREATE INDEX procrastinate_jobs_todo_queue_id ON procrastinate_jobs (queue_name, id)"
    " WHERE status = 'todo'"
)
SPREAD = "'q' || lpad(mod(i, 20)::text, 2, '0')"  # round-robin over the 20 queues
OTHERS = "'q' || lpad((1 + mod(i, 19))::text, 2, '0')"  # round-robin over q01..q19


def batches(scenario: str, rows: int) -> list[tuple[str, int, bool]]:
    """(queue expression over ``i``, how many, finished?) in insertion order, oldest first."""
    if scenario == "backlog":
        return [(SPREAD, rows, False)]
    if scenario == "history":
        return [(SPREAD, rows, True), (SPREAD, 10, False)]
    if scenario == "skewed":  # one queue's backlog ahead of 19 small queues
        return [("'q00'", rows, False), (OTHERS, 190, False)]
    return [(SPREAD, 10, False)]


def timed(scenario: str, rows: int) -> list[tuple[str, int, bool, float]]:
    """The batches, each with how many seconds before now its newest row was written (rows one
    millisecond apart, later batches newer)."""
    out = []
    later = 0.0
    for queue, n, done in reversed(batches(scenario, rows)):
        out.append((queue, n, done, later))
        later += n / 1000.0
    return out[::-1]


def load_procrastinate(conn: psycopg.Connection[Any], scenario: str, rows: int) -> None:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=conn.info.dsn))
    with app.open():
        app.schema_manager.apply_schema()
    # bulk rows straight into the table; the insert trigger still writes each 'deferred' event
    conn.execute(
        "ALTER TABLE procrastinate_jobs"
        " DISABLE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1"
    )
    for queue, n, done, _ in timed(scenario.removesuffix("+index"), rows):
        status = "'succeeded'" if done else "'todo'"
        conn.execute(
            f"INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
            f" SELECT {queue}, 'noop', '{{}}', {status} FROM generate_series(1, %s) i",
            (n,),
        )
    if scenario.endswith("+index"):  # the index the README suggests for procrastinate
        conn.execute(PROCRASTINATE_INDEX)


def load_good_job(conn: psycopg.Connection[Any], scenario: str, rows: int) -> None:
    conn.execute((LAYOUTS / "good_job_4.sql").read_text())
    for queue, n, done, newest in timed(scenario, rows):
        finished = "t" if done else "NULL"
        conn.execute(
            "INSERT INTO good_jobs (active_job_id, job_class, queue_name, priority,"
            " serialized_params, created_at, updated_at, scheduled_at, performed_at, finished_at)"
            f" SELECT gen_random_uuid(), 'ReportJob', {queue}, 0, '{{}}', t, t, t,"
            f" {finished}, {finished}"
            " FROM (SELECT i, (now() AT TIME ZONE 'UTC')"
            " - make_interval(secs => %s + (%s - i) / 1000.0) t"
            " FROM generate_series(1, %s) i) s",
            (newest, n, n),
        )


def load_solid_queue(conn: psycopg.Connection[Any], scenario: str, rows: int) -> None:
    conn.execute((LAYOUTS / "solid_queue_1.sql").read_text())
    for queue, n, done, newest in timed(scenario, rows):
        finished = "t" if done else "NULL"
        conn.execute(
            "INSERT INTO solid_queue_jobs (queue_name, class_name, arguments, active_job_id,"
            " scheduled_at, finished_at, created_at, updated_at)"
            f" SELECT {queue}, 'ReportJob', '{{}}', gen_random_uuid()::text, t, {finished}, t, t"
            " FROM (SELECT i, (now() AT TIME ZONE 'UTC')"
            " - make_interval(secs => %s + (%s - i) / 1000.0) t"
            " FROM generate_series(1, %s) i) s",
            (newest, n, n),
        )
    conn.execute(
        "INSERT INTO solid_queue_ready_executions (job_id, queue_name, priority, created_at)"
        " SELECT id, queue_name, 0, created_at FROM solid_queue_jobs"
        " WHERE finished_at IS NULL ORDER BY id"
    )


LOADERS: dict[str, Loader] = {
    "procrastinate": load_procrastinate,
    "good_job": load_good_job,
    "solid_queue": load_solid_queue,
}


def explain(source: Source, dsn: str) -> tuple[str, str]:
    """Buffers touched by the 20-queue probe, and the job tables it read by sequential scan."""
    statement = source.statement  # type: ignore[attr-defined]
    params = source.params  # type: ignore[attr-defined]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort",
                        "enable_incremental_sort", "jit"):  # fmt: skip
            conn.execute(f"SET {setting} = off")  # as each poll's transaction does
        conn.execute("SET TimeZone = 'UTC'")
        text = statement.as_string(conn)
        plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, params)]
    buffers = next((line.strip() for line in plan if "Buffers:" in line), "Buffers: ?")
    seq = sorted({m.group(1) for line in plan if (m := JOB_TABLES.search(line))})
    return buffers.removeprefix("Buffers: "), ", ".join(seq) or "none"


def bench_backend(name: str, rows: int, n: int) -> None:
    scenarios = ["small", "backlog", "history", "skewed"]
    if name == "procrastinate":
        scenarios.append("skewed+index")
    for scenario in scenarios:
        schema = f"t_pgjobs_bench_{name}"
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            t0 = time.perf_counter()
            with psycopg.connect(url(schema), autocommit=True) as conn:
                LOADERS[name](conn, scenario, rows)
                conn.execute("VACUUM ANALYZE")
            load_s = time.perf_counter() - t0
            configured = make(name, url(schema), queues=",".join(QUEUES))
            discovering = make(name, url(schema))
            med, worst = polls(configured, n)
            dmed, _ = polls(discovering, max(3, n // 3))
            reading = configured.sample(time.time())
            buffers, seq = explain(configured, url(schema))
            configured.close()
            discovering.close()
            print(
                f"{name:13} {scenario:12} due={reading.depth:>9,} "
                f"poll median {med:7.2f} ms  max {worst:7.2f} ms  discovery {dmed:7.2f} ms  "
                f"buffers {buffers:24} seq scans of job tables: {seq}  "
                f"(loaded in {load_s:.0f}s)"
            )
        finally:
            with psycopg.connect(BASE, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def bench_sql(n: int) -> None:
    source = make("sql", BASE, sql="SELECT 0")
    med, worst = polls(source, n)
    source.close()
    print(
        f"{'sql':13} SELECT 0 poll median {med:7.2f} ms  max {worst:7.2f} ms"
        "  (the fixed cost of a poll)"
    )


def bench_http(n: int) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'[{"name": "worker", "value": 1.5}]'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    source = make("http", None, url=f"http://127.0.0.1:{srv.server_address[1]}/hirefire/x/info")
    med, worst = polls(source, n)
    source.close()
    srv.shutdown()
    print(f"{'http':13} local   poll median {med:7.2f} ms  max {worst:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--only", choices=sorted(LOADERS), action="append")
    args = parser.parse_args()
    print(f"20 queues, {args.rows:,} rows in the large data sets, {args.polls} polls each")
    for name in args.only or LOADERS:
        bench_backend(name, args.rows, args.polls)
    if not args.only:
        bench_sql(args.polls)
        bench_http(args.polls)


if __name__ == "__main__":
    main()
