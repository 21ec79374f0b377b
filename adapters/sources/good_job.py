"""Source ``good_job``: job latency read from GoodJob's ``good_jobs`` table (GoodJob 4.x layout,
``lib/generators/good_job/templates/install/migrations/create_good_jobs.rb.erb``).

GoodJob's own scopes (``app/models/good_job/job.rb``) define the states read here:

- waiting and due (``queued``): ``performed_at IS NULL AND finished_at IS NULL AND
  scheduled_at <= now``. GoodJob sets ``scheduled_at`` on every enqueue (the enqueue time for an
  immediate job, the requested time for a scheduled one, the retry time for a retry), so the
  age of a due job is ``now - scheduled_at``: a past-due scheduled job counts from its due
  time, a future one does not count;
- running (``running``): ``performed_at`` set, ``finished_at`` NULL; GoodJob 4 also records the
  process that runs it in ``locked_by_id``, whose partial index keeps that count cheap.

The oldest due job is one step down GoodJob's index on ``(queue_name, scheduled_at) WHERE
finished_at IS NULL``. Rails writes these ``timestamp`` columns in UTC with the app's clock; the
poll runs with ``TimeZone=UTC`` and compares them with the database's ``now()``, so a skew
between the app's clock and the database's shows up in the latency (negative ages are read as
0). GoodJob's queue pauses (``enable_pauses``) are not read. Tables are found through the
connection's ``search_path``.
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

LAYOUT = Layout(
    discover_table="good_jobs",
    discover_where="finished_at IS NULL",
    probe=f"""
SELECT c.q, c.n, o.age_s, 0, d.depth, b.busy, false
FROM chosen c
LEFT JOIN LATERAL (
    SELECT EXTRACT(EPOCH FROM now() - j.scheduled_at)::float8 AS age_s
    FROM good_jobs j WHERE {_DUE}
    ORDER BY j.queue_name, j.scheduled_at
    LIMIT 1
) o ON true
CROSS JOIN LATERAL (
    SELECT count(*) AS depth
    FROM (SELECT 1 FROM good_jobs j WHERE {_DUE} ORDER BY j.queue_name, j.scheduled_at
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
