"""Job latency read from Sidekiq's keys in Redis (Sidekiq 6, 7 and 8), read-only.

A Rails app's Sidekiq is autoscaled from this daemon without any Ruby code. Layout (sidekiq
``lib/sidekiq/client.rb`` ``atomic_push``, ``lib/sidekiq/api.rb``, ``lib/sidekiq/launcher.rb``,
``lib/sidekiq/scheduled.rb`` at v6.4.1, v7.3.9 and 8.x):

- ``queues``: set of queue names.
- ``queue:<name>``: list of job JSON; the client LPUSHes, fetch BRPOPs, so the oldest job is at
  the tail (``Sidekiq::Queue#latency`` reads ``LINDEX queue:<name> -1``).
- ``enqueued_at`` in the job: float epoch seconds up to Sidekiq 7, integer epoch milliseconds
  from 8.0 (``created_at`` likewise; Sidekiq falls back to it when ``enqueued_at`` is absent).
- ``schedule`` and ``retry``: zsets of job JSON, score = when due (float epoch seconds). Sidekiq
  processes move due ones to their queue every few seconds; a due one still there (no Sidekiq
  process running, e.g. scaled to zero) counts from its score.
- ``processes``: set of process identities; hash ``<identity>`` (expires 60 s after the last
  heartbeat); hash ``<identity>:work`` (``:workers`` in 6.x) thread -> JSON with ``queue``: the
  jobs running now.

Apps using the deprecated redis-namespace gem set ``AUTOSCALER_<P>_KEY_PREFIX`` to the namespace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from autoscaler.redact import quote
from autoscaler.sources import _redisjobs as redisjobs
from autoscaler.sources._redisjobs import Layout, Malformed, Probe, Probed, QueueState, Round

BACKEND = "sidekiq"
#: due entries read from each of ``schedule`` and ``retry`` per poll
SCHEDULED_HEAD = 50
_SETS = ("schedule", "retry")


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = ""

    def key(self, name: str) -> str:
        return f"{self.namespace}:{name}" if self.namespace else name

    def queue(self, name: str) -> str:
        return self.key(f"queue:{name}")


def job_time(raw: bytes, now: float) -> float:
    """When a job in a queue list was enqueued (epoch seconds), from its JSON."""
    job = redisjobs.json_object(raw)
    value = job.get("enqueued_at", job.get("created_at"))
    if value is None:
        raise Malformed("job has neither enqueued_at nor created_at")
    return redisjobs.epoch_seconds(value, "enqueued_at", now)


def job_queue(raw: bytes) -> str:
    """The queue a scheduled, retrying or running job belongs to."""
    value = redisjobs.json_object(raw).get("queue")
    if not isinstance(value, str):
        raise Malformed(f"entry has queue {quote(value)}, not a queue name")
    return value


def due_entries(
    entries: Iterable[tuple[bytes, float]], watched: set[str]
) -> tuple[dict[str, float], Counter[str]]:
    """Of the due ``schedule``/``retry`` entries read, the earliest due time and count per
    watched queue."""
    first: dict[str, float] = {}
    count: Counter[str] = Counter()
    for member, score in entries:
        name = job_queue(member)
        if name in watched:
            first[name] = min(first.get(name, score), score)
            count[name] += 1
    return first, count


def running(work: Iterable[bytes], watched: set[str]) -> int:
    """Jobs running in the watched queues, from the values of a process's work hash."""
    return sum(1 for value in work if job_queue(value) in watched)


def queue_state(
    length: int, tail: Sequence[bytes], scheduled: float | None, scheduled_count: int, now: float
) -> QueueState:
    """One queue from its length, the last ``HEAD`` job payloads (oldest last) and the
    earliest due time and count of its due entries in ``schedule``/``retry``."""
    times: list[float | None] = [job_time(raw, now) for raw in tail]
    times.append(scheduled)
    return QueueState(redisjobs.oldest(times), length + scheduled_count)


def probe(keys: Keys) -> Probe:
    def read(client: redis.Redis, queues: Sequence[str], now: float) -> Probed:
        head = Round(client, BACKEND)
        for name in queues:
            head.head(name, keys.queue(name), newest_first=True)
        for zset in _SETS:
            head.pipe.zrangebyscore(
                keys.key(zset), "-inf", now, start=0, num=SCHEDULED_HEAD, withscores=True
            )
            head.label(f"the {zset} set")
        head.pipe.smembers(keys.key("processes"))
        head.label("the processes set")
        first = head.run()

        identities = sorted(redisjobs.text(member) for member in first[-1])
        alive = Round(client, BACKEND)
        for identity in identities:
            alive.pipe.exists(keys.key(identity))
            alive.pipe.hvals(keys.key(f"{identity}:work"))
            alive.pipe.hvals(keys.key(f"{identity}:workers"))
            alive.label(f"process {quote(identity)}", 3)
        work = alive.run()

        watched = set(queues)
        earliest: dict[str, float] = {}
        counts: Counter[str] = Counter()
        for zset, entries in zip(_SETS, first[2 * len(queues) : -1], strict=True):
            with redisjobs.about(f"the {zset} set"):
                due_first, due_count = due_entries(entries, watched)
            for name, at in due_first.items():
                earliest[name] = min(earliest.get(name, at), at)
            counts.update(due_count)
        states: dict[str, QueueState] = {}
        for i, name in enumerate(queues):
            with redisjobs.about(f"queue {quote(name)}"):
                states[name] = queue_state(
                    first[2 * i], first[2 * i + 1], earliest.get(name), counts[name], now
                )
        busy = 0
        for i, identity in enumerate(identities):
            alive, new, old = work[3 * i : 3 * i + 3]
            if alive:
                with redisjobs.about(f"process {quote(identity)}"):
                    busy += running([*new, *old], watched)
        return states, busy

    return read


def layout(key_prefix: str | None) -> Layout:
    keys = Keys(key_prefix or "")

    def discover(client: redis.Redis) -> tuple[list[str], bool]:
        return [
            redisjobs.text(name) for name in redisjobs.members(client, keys.key("queues"))
        ], True

    return Layout(discover, probe(keys))


ADAPTER = redisjobs.job_adapter(BACKEND, layout)
