"""Job latency read from RQ's keys in Redis (rq 2.x and 3.x), read-only.

Layout (rq 3.0.0 ``rq/queue.py``, ``rq/registry.py``, ``rq/utils.py``; the same in 2.x):

- ``rq:queues``: set of queue keys ``rq:queue:<name>`` (names may contain ``:``).
- ``rq:queue:<name>``: list of job ids. Enqueue RPUSHes (``at_front`` LPUSHes); workers pop the
  head, so the oldest job is near index 0. We read the first ``HEAD`` ids and take the oldest.
- ``rq:job:<id>``: hash; ``enqueued_at`` is ``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC, set each time the
  job is pushed onto the queue (also when the scheduler moves a due job there).
- ``rq:scheduled:<name>``: zset of scheduled and retry-with-interval jobs, score = due time in
  integer epoch seconds. A worker started with ``--with-scheduler`` moves due ones to the queue;
  a due one still here (no scheduler running, e.g. all workers at 0) counts from its score.
- ``rq:wip:<name>``: zset of running executions, score = when the entry expires (busy jobs).
- ``rq:workers:<name>``: set of the keys ``rq:worker:<name>`` of the workers serving the queue;
  each worker hash counts the jobs it ended (``successful_job_count``, ``failed_job_count``,
  absent until the first) and has ``birth`` from its start; a stopped worker's hash expires 60 s
  after its death. The jobs that ended between two polls (``Reading.finished``) are the rise of
  the sum of these counters (``_redisjobs.finished_since``: unknown on the first poll, when a
  counter went back or a worker seen before left no hash).
- Rate-limited (rq 3) and dependent (``rq:deferred:<name>``) jobs are not due: they wait on
  something that more workers cannot speed up.

The ``rq`` prefix is fixed in rq 2.x (``key_template = 'rq:wip:{0}'``...); rq 3.0.0 reads it from
the ``RQ_KEY_PREFIX`` environment variable (``rq/defaults.py``, default ``rq``): set
``AUTOSCALER_<P>_KEY_PREFIX`` to match. (Checked against the rq 2.12.0 and 3.0.0 wheels on PyPI.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from autoscaler.redact import quote
from autoscaler.sources import _redisjobs as redisjobs
from autoscaler.sources._redisjobs import (
    Count,
    Layout,
    Malformed,
    Probe,
    Probed,
    QueueState,
    Round,
)

BACKEND = "rq"
DEFAULT_PREFIX = "rq"
_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    @property
    def registry(self) -> str:
        return f"{self.prefix}:queues"

    def queue(self, name: str) -> str:
        return f"{self.prefix}:queue:{name}"

    def scheduled(self, name: str) -> str:
        return f"{self.prefix}:scheduled:{name}"

    def wip(self, name: str) -> str:
        return f"{self.prefix}:wip:{name}"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def workers(self, name: str) -> str:
        return f"{self.prefix}:workers:{name}"


def queue_names(members: Iterable[bytes | str], keys: Keys) -> list[str]:
    """Queue names from the members of ``rq:queues`` (full keys; strip the prefix, never split)."""
    start = keys.queue("")
    names = (redisjobs.text(member) for member in members)
    return [name[len(start) :] for name in names if name.startswith(start) and name != start]


def parse_enqueued_at(raw: str) -> float:
    """RQ's UTC timestamp (``2026-08-02T10:11:12.123456Z``, older jobs without the fraction)."""
    for fmt in _FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise Malformed(f"enqueued_at {quote(raw)} is not an RQ timestamp")


def queue_state(
    length: int,
    ids: Sequence[bytes],
    fields: Sequence[Sequence[bytes | None]],
    scheduled_due: Sequence[tuple[bytes, float]],
    scheduled_count: int,
    *,
    now: float,
) -> QueueState:
    """One queue from what the poll read: its length, the ids at its head with their
    ``(enqueued_at, created_at)``, the first due scheduled entry and the due scheduled count."""
    times: list[float | None] = []
    dangling = 0
    for job_id, (enqueued_at, created_at) in zip(ids, fields, strict=True):
        if enqueued_at is None and created_at is None:
            dangling += 1  # the job hash expired; workers skip such ids
            continue
        with redisjobs.about(f"job {quote(redisjobs.text(job_id))}"):
            if enqueued_at is None:
                raise Malformed("has no enqueued_at although it sits in the queue")
            times.append(
                redisjobs.check_time(
                    parse_enqueued_at(redisjobs.text(enqueued_at)), "enqueued_at", now
                )
            )
    if scheduled_due:
        times.append(float(scheduled_due[0][1]))
    expired = "job ids have no job hash (expired jobs)"
    return redisjobs.head_state(
        times, length, read=len(ids), missing=dangling, due=scheduled_count, what=expired
    )


def probe(keys: Keys) -> Probe:
    def read(client: redis.Redis, queues: Sequence[str], now: float) -> Probed:
        first = Round(client, BACKEND)
        for name in queues:
            first.head(name, keys.queue(name))
            first.pipe.zrangebyscore(
                keys.scheduled(name), "-inf", now, start=0, num=1, withscores=True
            )
            first.pipe.zcount(keys.scheduled(name), "-inf", now)
            first.pipe.zcount(keys.wip(name), f"({now}", "+inf")
            first.label(f"queue {quote(name)}", 3)
        replies = first.run()
        per_queue = [replies[i : i + 5] for i in range(0, len(replies), 5)]

        second = Round(client, BACKEND)
        for name, (_, ids, *_rest) in zip(queues, per_queue, strict=True):
            for job_id in ids:
                second.pipe.hmget(keys.job(redisjobs.text(job_id)), ["enqueued_at", "created_at"])
                second.label(f"queue {quote(name)} job {quote(redisjobs.text(job_id))}")
        fields = iter(second.run())

        states: dict[str, QueueState] = {}
        busy = 0
        for name, (length, ids, due, count, running) in zip(queues, per_queue, strict=True):
            with redisjobs.about(f"queue {quote(name)}"):
                states[name] = queue_state(
                    length, ids, [next(fields) for _ in ids], due, count, now=now
                )
            busy += running
        return states, busy

    return read


def counter(raw: Sequence[bytes | None]) -> int | None:
    """A worker hash's ``birth``, ``successful_job_count`` and ``failed_job_count``: the jobs
    it ended so far (a missing count is none yet); ``None`` when the hash is gone (no birth)."""
    birth, ok, failed = raw
    if birth is None:
        return None
    total = 0
    for name, value in (("successful_job_count", ok), ("failed_job_count", failed)):
        if value is None:
            continue
        field = redisjobs.text(value)
        if not field.isdigit():
            raise Malformed(f"{name} {quote(field)} is not a count")
        total += int(field)
    return total


def count(keys: Keys) -> Count:
    """The workers' counters of jobs ended: the workers registered for the queues
    (``rq:workers:<name>``, each a ``rq:worker:<name>`` hash) and the ``known`` ones."""

    def read(
        client: redis.Redis, queues: Sequence[str], known: Iterable[str]
    ) -> tuple[dict[str, int | None], set[str]]:
        first = Round(client, BACKEND)
        for name in queues:
            first.pipe.smembers(keys.workers(name))
            first.label(f"queue {quote(name)} workers")
        serving = {redisjobs.text(key) for found in first.run() for key in found}
        wanted = sorted(serving.union(known))
        second = Round(client, BACKEND)
        for key in wanted:
            second.pipe.hmget(key, ["birth", "successful_job_count", "failed_job_count"])
            second.label(f"worker {quote(key)}")
        counts: dict[str, int | None] = {}
        for key, raw in zip(wanted, second.run(), strict=True):
            with redisjobs.about(f"worker {quote(key)}"):
                counts[key] = counter(raw)
        return counts, serving

    return read


def layout(key_prefix: str | None) -> Layout:
    keys = Keys(key_prefix or DEFAULT_PREFIX)

    def discover(client: redis.Redis) -> tuple[list[str], bool]:
        return queue_names(redisjobs.members(client, keys.registry), keys), True

    return Layout(discover, probe(keys), count=count(keys))


ADAPTER = redisjobs.job_adapter(BACKEND, layout)
