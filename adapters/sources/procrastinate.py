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
- Cost: per queue, the first 200 due jobs in id order (procrastinate's partial index on todo
  and doing jobs) and one event lookup each (the index on ``job_id``). Ids grow with enqueue
  time, so the result is exact while a queue has up to 200 due jobs; beyond that, a retried or
  scheduled job further down the queue can be counted from a later time than its own.
- Busy: ``doing`` jobs held by a worker (``worker_id`` set).
- Schema: procrastinate's tables are found through the connection's ``search_path``; for a
  custom schema add ``?options=-csearch_path%3Dmyschema`` to the URL.
"""

from __future__ import annotations

from adapters.sources._pgjobs import JobTableSource, Layout, parse_config
from autoscaler.config import ProcessSettings, Settings

_DUE = (
    "j.status = 'todo' AND j.queue_name = c.q"
    " AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())"
)

LAYOUT = Layout(
    discover_table="procrastinate_jobs",
    discover_where="",
    probe=f"""
SELECT c.q, c.n, o.age_s, o.unknown, d.depth, b.busy, false
FROM chosen c
CROSS JOIN LATERAL (
    SELECT EXTRACT(EPOCH FROM now() - min(GREATEST(h.scheduled_at, ev.at)))::float8 AS age_s,
           count(*) FILTER (WHERE h.scheduled_at IS NULL AND ev.at IS NULL) AS unknown
    FROM (
        SELECT j.id, j.scheduled_at
        FROM procrastinate_jobs j
        WHERE {_DUE}
          AND NOT EXISTS (
              SELECT 1 FROM procrastinate_jobs r WHERE r.lock = j.lock AND r.status = 'doing')
        ORDER BY j.id
        LIMIT %(scan)s
    ) h
    CROSS JOIN LATERAL (
        SELECT max(e.at) AS at
        FROM procrastinate_events e
        WHERE e.job_id = h.id AND e.type IN ('deferred', 'deferred_for_retry', 'retried')
    ) ev
) o
CROSS JOIN LATERAL (
    SELECT count(*) AS depth
    FROM (SELECT 1 FROM procrastinate_jobs j WHERE {_DUE} LIMIT %(depth_cap)s) x
) d
CROSS JOIN LATERAL (
    SELECT count(*) AS busy
    FROM procrastinate_jobs j
    WHERE j.status = 'doing' AND j.worker_id IS NOT NULL AND j.queue_name = c.q
) b
""",
)


def build(settings: Settings, process: ProcessSettings) -> JobTableSource:
    config = parse_config(settings.env, process, settings.glob.database_url)
    return JobTableSource("procrastinate", LAYOUT, config, process.var_prefix)
