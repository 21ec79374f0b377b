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

Cost: the ready rows are read in id order, which is their insertion order (the first 200 per
queue, through the primary key or Solid Queue's ``(queue_name, priority, job_id)`` index);
due scheduled rows through Solid Queue's index on ``scheduled_at``. Rails writes these
``timestamp`` columns in UTC with the app's clock; the poll runs with ``TimeZone=UTC`` and
compares them with the database's ``now()`` (negative ages, from an app clock ahead of the
database, are read as 0). Rails 8 puts Solid Queue in its own database by default: set
``AUTOSCALER_<P>_DATABASE_URL`` to it.
"""

from __future__ import annotations

from adapters.sources._pgjobs import JobTableSource, Layout, parse_config
from autoscaler.config import ProcessSettings, Settings

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
    SELECT (SELECT min(x.created_at) FROM (
                SELECT e.created_at FROM solid_queue_ready_executions e
                WHERE e.queue_name = c.q ORDER BY e.id LIMIT %(scan)s) x) AS oldest,
           (SELECT count(*) FROM (
                SELECT 1 FROM solid_queue_ready_executions e
                WHERE e.queue_name = c.q LIMIT %(depth_cap)s) x) AS depth
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


def build(settings: Settings, process: ProcessSettings) -> JobTableSource:
    config = parse_config(settings.env, process, settings.glob.database_url)
    return JobTableSource("solid_queue", LAYOUT, config, process.var_prefix)
