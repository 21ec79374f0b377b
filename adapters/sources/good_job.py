"""Source ``good_job``: job latency read from GoodJob's ``good_jobs`` table (GoodJob 4.x layout,
``lib/generators/good_job/templates/install/migrations/create_good_jobs.rb.erb``, and GoodJob
3.99's, the release every app passes through on its way to 4.0, which has the same columns).

GoodJob's own scopes (``app/models/good_job/job.rb``) define the states read here:

- waiting and due (``queued``): ``performed_at IS NULL AND finished_at IS NULL`` and due, where
  the due time is ``coalesce(scheduled_at, created_at)`` (GoodJob's ``schedule_ordered``).
  GoodJob 4 sets ``scheduled_at`` on every enqueue (the enqueue time for an immediate job, the
  requested time for a scheduled one, the retry time for a retry); GoodJob 3.x
  (``base_execution.rb``) sets it only for scheduled jobs and leaves it NULL for an immediate
  one, which is due from ``created_at``. The age of a due job is ``now - due time``: a
  past-due scheduled job counts from its due time, a future one does not count;
- running (``running``): ``performed_at`` set, ``finished_at`` NULL; GoodJob 3.99 and 4 also
  record the process that runs it in ``locked_by_id``, whose partial index keeps that count
  cheap. A table without ``locked_by_id`` (GoodJob before 3.99) is refused with a message that
  says to run GoodJob's migrations.

Jobs with a ``scheduled_at`` are one step down GoodJob's index on ``(queue_name, scheduled_at)
WHERE finished_at IS NULL``. Jobs without one (GoodJob 3.x only) are found through the same
index (``scheduled_at IS NULL``), but no GoodJob index orders them by ``created_at`` within a
queue, so their oldest is the minimum over all of the queue's waiting immediate jobs: on
GoodJob 3.x a poll reads each such job once (bounded by ``SQL_TIMEOUT``); on GoodJob 4 there
are none and it costs one index lookup. Rails writes these ``timestamp`` columns in UTC with the
app's clock; the poll runs with ``TimeZone=UTC`` and compares them with the database's
``now()``, so a skew between the app's clock and the database's shows up in the latency
(negative ages are read as 0). GoodJob's queue pauses (``enable_pauses``) are not read. Tables
are found through the connection's ``search_path``.
"""

from __future__ import annotations

from autoscaler.sources._pgjobs import Layout, table_adapter

# ``queue_name = c.q`` written as a range of the pair (queue_name, scheduled_at): only GoodJob's
# (queue_name, scheduled_at) index can serve it, so the planner cannot walk the single-column
# scheduled_at index through other queues' backlogs instead. NULLs fall outside the range.
_DUE = (
    "(j.queue_name, j.scheduled_at) >= (c.q, '-infinity')"
    " AND (j.queue_name, j.scheduled_at) <= (c.q, now())"
    " AND j.finished_at IS NULL AND j.performed_at IS NULL"
)
# GoodJob 3.x's immediate jobs: no scheduled_at, due since created_at (the same index serves
# ``queue_name = c.q AND scheduled_at IS NULL``)
_IMMEDIATE = (
    "j.queue_name = c.q AND j.scheduled_at IS NULL"
    " AND j.finished_at IS NULL AND j.performed_at IS NULL"
)

LAYOUT = Layout(
    discover_table="good_jobs",
    discover_where="finished_at IS NULL",
    hint="GoodJob 3.99 and 4.x tables are read; for an older GoodJob, upgrade to 3.99 and run "
    "its migrations (bin/rails g good_job:update && bin/rails db:migrate)",
    probe=f"""
SELECT c.q, c.n, GREATEST(o.age_s, i.age_s), 0, d.depth, b.busy, false
FROM chosen c
LEFT JOIN LATERAL (
    SELECT EXTRACT(EPOCH FROM now() - j.scheduled_at)::float8 AS age_s
    FROM good_jobs j WHERE {_DUE}
    ORDER BY j.queue_name, j.scheduled_at
    LIMIT 1
) o ON true
CROSS JOIN LATERAL (
    -- OFFSET 0 keeps min() an aggregate over the index lookup above: turned into a walk of
    -- another index in created_at order, it would read a GoodJob 4 table's whole history
    SELECT EXTRACT(EPOCH FROM now() - min(x.created_at))::float8 AS age_s
    FROM (SELECT j.created_at FROM good_jobs j WHERE {_IMMEDIATE} OFFSET 0) x
) i
CROSS JOIN LATERAL (
    SELECT count(*) AS depth
    FROM ((SELECT 1 FROM good_jobs j WHERE {_DUE} ORDER BY j.queue_name, j.scheduled_at
           LIMIT %(depth_cap)s)
          UNION ALL
          (SELECT 1 FROM good_jobs j WHERE {_IMMEDIATE} LIMIT %(depth_cap)s)
          LIMIT %(depth_cap)s) x
) d
CROSS JOIN LATERAL (
    SELECT count(*) AS busy
    FROM good_jobs j
    WHERE j.locked_by_id IS NOT NULL AND j.queue_name = c.q
      AND j.performed_at IS NOT NULL AND j.finished_at IS NULL
) b
""",
)


ADAPTER = table_adapter("good_job", LAYOUT)
