"""Job latency read from arq's queues in Redis (arq 0.2x), read-only.

Layout (arq 0.28 ``arq/connections.py`` ``enqueue_job``, ``arq/worker.py``, ``arq/constants.py``):

- The queue is a zset whose key is the queue name itself (``arq:queue`` by default); member =
  job id, score = when the job is due in epoch milliseconds (the enqueue time, or the
  ``_defer_until``/``_defer_by`` time; a retry with ``defer`` moves the score). So a deferred
  job is not due until its score, and a past-due one counts from its score.
- ``arq:in-progress:<id>`` exists while a worker runs the job; the id stays in the zset until the
  job finishes. Such jobs are busy, not waiting.
- ``arq:job:<id>`` holds the (pickled) job; an id without it has expired and workers drop it.

arq keeps no list of queue names: without ``AUTOSCALER_<P>_QUEUES`` the source reads
``arq:queue``. A poll reads the first ``ARQ_HEAD`` due ids of each queue; when every one of them
is running, the age of the oldest waiting job is bounded by the last of them, and that bound is
reported (it can only overstate, never hide, a backlog).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from autoscaler.sources._redisjobs import (
    Layout,
    Probed,
    QueueState,
    RedisJobSettings,
    Round,
    about,
    check_time,
    job_adapter,
    text,
)

BACKEND = "arq"
DEFAULT_QUEUE = "arq:queue"
IN_PROGRESS = "arq:in-progress:"
JOB = "arq:job:"
#: due ids read from the head of each queue per poll (more than the jobs a queue's workers run)
ARQ_HEAD = 50


def queue_state(
    due_count: int,
    head: Sequence[tuple[bytes, float]],
    flags: Sequence[tuple[int, int]],
    now: float,
) -> tuple[QueueState, int]:
    """One queue and its busy count, from the number of due ids, the first due ``(id, score)``
    pairs and, for each, whether it is in progress and whether its job still exists."""
    busy = gone = 0
    due_at: float | None = None
    for (_, score), (running, exists) in zip(head, flags, strict=True):
        if running:
            busy += 1
        elif not exists:
            gone += 1
        elif due_at is None:
            due_at = check_time(score / 1000.0, "score", now)
    if due_at is None and head and due_count > len(head):
        due_at = check_time(head[-1][1] / 1000.0, "score", now)  # a bound: see the module doc
    return QueueState(due_at, max(0, due_count - busy - gone)), busy


def probe(client: redis.Redis, queues: Sequence[str], now: float) -> Probed:
    now_ms = now * 1000.0
    heads = Round(client, BACKEND)
    for name in queues:
        heads.pipe.zcount(name, "-inf", now_ms)
        heads.pipe.zrangebyscore(name, "-inf", now_ms, start=0, num=ARQ_HEAD, withscores=True)
        heads.label(f"queue {name!r}", 2)
    first = heads.run()

    jobs = Round(client, BACKEND)
    for i, name in enumerate(queues):
        for job_id, _ in first[2 * i + 1]:
            jobs.pipe.exists(IN_PROGRESS + text(job_id))
            jobs.pipe.exists(JOB + text(job_id))
            jobs.label(f"queue {name!r}", 2)
    second = jobs.run()

    states: dict[str, QueueState] = {}
    busy = 0
    offset = 0
    for i, name in enumerate(queues):
        count, head = first[2 * i], first[2 * i + 1]
        flags = [(second[offset + 2 * j], second[offset + 2 * j + 1]) for j in range(len(head))]
        offset += 2 * len(head)
        with about(f"queue {name!r}"):
            states[name], running = queue_state(count, head, flags, now)
        busy += running
    return states, busy


def layout(key_prefix: str | None) -> Layout:
    def discover(client: redis.Redis) -> tuple[list[str], bool]:
        return [DEFAULT_QUEUE], True

    return Layout(discover, probe)


#: arq's queue names are its keys: no ``KEY_PREFIX`` (set ``QUEUES`` instead)
ADAPTER = job_adapter(BACKEND, layout, RedisJobSettings)
