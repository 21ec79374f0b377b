"""Source ``procrastinate``: job latency read from procrastinate's tables (3.x layout,
``procrastinate/sql/schema.sql``).

A waiting job is a ``procrastinate_jobs`` row with ``status = 'todo'``; it is due when
``scheduled_at`` is NULL or past. The table has no enqueue-time column: the time comes from
``procrastinate_events``, which procrastinate's own triggers fill with the database clock
(``deferred`` on insert, ``deferred_for_retry`` when a failed job goes back to todo,
``retried`` on a manual retry). A job is due since the later of that event and its
``scheduled_at``, so a past-due scheduled job or a retry counts from its due time.

- A job whose ``lock`` is held by a running job cannot run yet: it does not count in the
  latency (more workers would not start it); it does count in the depth.
- Cost: procrastinate has no index on (queue, id) for waiting jobs. A poll reads the first
  2,000 due jobs of all queues in id order once (``head``, through procrastinate's indexes on
  todo jobs); each queue takes its first 100 from there and one event lookup each (the index
  on ``job_id``). Ids grow with enqueue time, so this is exact unless more than 100 retried or
  scheduled jobs sit ahead of the oldest. A queue absent from the head (all its jobs behind a
  backlog of other queues) is probed alone through the index on ``queue_name``, whose cost is
  the queue's own rows, finished ones included; ``SUGGESTED_INDEX`` bounds that to its
  waiting jobs, and ``check()`` suggests it while it is missing.
- Busy: ``doing`` jobs held by a worker (``worker_id`` set).
- Schema: procrastinate's tables are found through the connection's ``search_path``; for a
  custom schema add ``?options=-csearch_path%3Dmyschema`` to the URL.
"""

from __future__ import annotations

from autoscaler.sources._pgjobs import JobTableSource, Layout, table_adapter

#: the index that makes every queue's probe constant-time (README, "procrastinate")
SUGGESTED_INDEX = (
    "CREATE INDEX CONCURRENTLY procrastinate_jobs_todo_queue_id"
    " ON procrastinate_jobs (queue_name, id) WHERE status = 'todo'"
)
_HAS_INDEX = """
SELECT EXISTS (
    SELECT 1 FROM pg_index i
    JOIN pg_class t ON t.oid = i.indrelid
    WHERE t.oid = 'procrastinate_jobs'::regclass
      AND pg_get_indexdef(i.indexrelid) LIKE '%(queue_name, id)%'
      AND pg_get_expr(i.indpred, i.indrelid) LIKE '%todo%')
"""

_DUE = "j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())"
_RUNNABLE = (
    "NOT EXISTS (SELECT 1 FROM procrastinate_jobs r WHERE r.lock = j.lock AND r.status = 'doing')"
)

LAYOUT = Layout(
    discover_table="procrastinate_jobs",
    discover_where="",
    # ``head``: the first due, runnable jobs of all queues in id (= enqueue) order, read once.
    # A queue found there takes its oldest from there; a queue absent from it (all its jobs are
    # behind a backlog of other queues) is probed alone, through procrastinate's index on
    # queue_name (``id + 0`` keeps the planner from walking the backlog in id order instead).
    probe=f"""
, head AS MATERIALIZED (
    SELECT w.id, w.queue_name, w.scheduled_at,
           row_number() OVER (PARTITION BY w.queue_name ORDER BY w.id) AS k
    FROM (SELECT j.id, j.queue_name, j.scheduled_at FROM procrastinate_jobs j
          WHERE {_DUE} AND {_RUNNABLE}
          ORDER BY j.id LIMIT %(head)s) w
)
SELECT c.q, c.n, o.age_s, o.unknown, d.depth, b.busy, false
FROM chosen c
CROSS JOIN LATERAL (
    SELECT EXTRACT(EPOCH FROM now() - min(GREATEST(h.scheduled_at, ev.at)))::float8 AS age_s,
           count(*) FILTER (WHERE h.scheduled_at IS NULL AND ev.at IS NULL) AS unknown
    FROM (
        SELECT x.id, x.scheduled_at FROM head x WHERE x.queue_name = c.q AND x.k <= %(scan)s
        UNION ALL
        (SELECT j.id, j.scheduled_at FROM procrastinate_jobs j
         WHERE NOT EXISTS (SELECT 1 FROM head x WHERE x.queue_name = c.q)
           AND j.queue_name = c.q AND {_DUE} AND {_RUNNABLE}
         ORDER BY j.id + 0 LIMIT %(scan)s)
    ) h
    CROSS JOIN LATERAL (
        SELECT max(e.at) AS at
        FROM procrastinate_events e
        WHERE e.job_id = h.id AND e.type IN ('deferred', 'deferred_for_retry', 'retried')
    ) ev
) o
CROSS JOIN LATERAL (
    SELECT count(*) AS depth
    FROM (SELECT 1 FROM procrastinate_jobs j WHERE j.queue_name = c.q AND {_DUE}
          LIMIT %(depth_cap)s) x
) d
CROSS JOIN LATERAL (
    SELECT count(*) AS busy
    FROM procrastinate_jobs j
    WHERE j.status = 'doing' AND j.worker_id IS NOT NULL AND j.queue_name = c.q
) b
""",
)


class ProcrastinateSource(JobTableSource):
    def check(self) -> str:
        line = super().check()
        rows, _ = self.client.query(_HAS_INDEX, None, self.what)
        if not rows[0][0]:
            line += f"; for a constant-cost probe add: {SUGGESTED_INDEX}"
        return line


ADAPTER = table_adapter("procrastinate", LAYOUT, ProcrastinateSource)
