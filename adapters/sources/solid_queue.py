"""Source ``solid_queue``: job latency read from Solid Queue's tables (Solid Queue 1.x layout,
``lib/generators/solid_queue/install/templates/db/queue_schema.rb``).

- Waiting and due: a row in ``solid_queue_ready_executions``; its ``created_at`` is when the
  job became ready (enqueue time, or the time the dispatcher moved a scheduled job in), which is
  what ``SolidQueue::Queue#latency`` measures.
- Due but not yet dispatched: a ``solid_queue_scheduled_executions`` row whose ``scheduled_at``
  has passed (the dispatcher is late or down) counts from ``scheduled_at``; future ones do not.
- Running: ``solid_queue_claimed_executions`` (joined to ``solid_queue_jobs`` for the queue).
- Paused queues (``solid_queue_pauses``) are shown but do not count: workers skip them.
- Jobs blocked by a concurrency limit (``solid_queue_blocked_executions``) do not count: more
  workers would not run them.

Cost: the ready rows are read through Solid Queue's ``(queue_name, priority, job_id)`` index:
for each priority of the queue (the ten most urgent), the first 100 in job id (= enqueue) order;
due scheduled rows through Solid Queue's index on ``scheduled_at``. Rails writes these
``timestamp`` columns in UTC with the app's clock; the poll runs with ``TimeZone=UTC`` and
compares them with the database's ``now()`` (negative ages, from an app clock ahead of the
database, are read as 0). Rails 8 puts Solid Queue in its own database by default: set
``AUTOSCALER_<P>_DATABASE_URL`` to it.
"""

from __future__ import annotations

from autoscaler.sources._pgjobs import Layout, table_adapter

LAYOUT = Layout(
    discover_table="solid_queue_jobs",
    discover_where="",
    probe="""
SELECT c.q, c.n,
       EXTRACT(EPOCH FROM now() - LEAST(r.oldest, s.oldest))::float8,
       0,
       r.depth + s.depth,
       b.busy,
       EXISTS (SELECT 1 FROM solid_queue_pauses p WHERE p.queue_name = c.q)
FROM chosen c
CROSS JOIN LATERAL (
    -- Solid Queue's (queue_name, priority, job_id) index, read with row comparisons so that no
    -- other index (such as (priority, job_id), which spans every queue) can serve them: a loose
    -- scan over the queue's priorities (up to 10), then the oldest rows of each priority.
    WITH RECURSIVE prio(p) AS (
        (SELECT CASE WHEN e.queue_name = c.q THEN e.priority END
         FROM solid_queue_ready_executions e
         WHERE (e.queue_name, e.priority) >= (c.q, -2147483648)
         ORDER BY e.queue_name, e.priority LIMIT 1)
        UNION ALL
        SELECT (SELECT CASE WHEN e.queue_name = c.q THEN e.priority END
                FROM solid_queue_ready_executions e
                WHERE (e.queue_name, e.priority) > (c.q, prio.p)
                ORDER BY e.queue_name, e.priority LIMIT 1)
        FROM prio WHERE prio.p IS NOT NULL
    )
    SELECT (SELECT min(w.created_at)
            FROM (SELECT p FROM prio WHERE p IS NOT NULL LIMIT 10) ps
            CROSS JOIN LATERAL (
                SELECT e.created_at FROM solid_queue_ready_executions e
                WHERE (e.queue_name, e.priority, e.job_id) >= (c.q, ps.p, -9223372036854775808)
                  AND (e.queue_name, e.priority, e.job_id) <= (c.q, ps.p, 9223372036854775807)
                ORDER BY e.queue_name, e.priority, e.job_id LIMIT %(scan)s) w) AS oldest,
           (SELECT count(*) FROM (
                SELECT 1 FROM solid_queue_ready_executions e
                WHERE (e.queue_name, e.priority) >= (c.q, -2147483648)
                  AND (e.queue_name, e.priority) <= (c.q, 2147483647)
                ORDER BY e.queue_name, e.priority, e.job_id LIMIT %(depth_cap)s) x) AS depth
) r
CROSS JOIN LATERAL (
    SELECT (SELECT min(e.scheduled_at) FROM solid_queue_scheduled_executions e
            WHERE e.queue_name = c.q AND e.scheduled_at <= now()) AS oldest,
           (SELECT count(*) FROM (
                SELECT 1 FROM solid_queue_scheduled_executions e
                WHERE e.queue_name = c.q AND e.scheduled_at <= now() LIMIT %(depth_cap)s) x)
           AS depth
) s
CROSS JOIN LATERAL (
    SELECT count(*) AS busy
    FROM solid_queue_claimed_executions ce JOIN solid_queue_jobs j ON j.id = ce.job_id
    WHERE j.queue_name = c.q
) b
""",
)


ADAPTER = table_adapter("solid_queue", LAYOUT)
