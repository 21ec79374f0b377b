"""Job latency read from Dramatiq's Redis broker keys (dramatiq 1.x and 2.x), read-only.

Layout (dramatiq 2.2 ``dramatiq/brokers/redis/dispatch.lua`` header and commands,
``dramatiq/brokers/redis.py``, ``dramatiq/message.py``, ``dramatiq/worker.py``; namespace
``dramatiq`` by default):

- ``dramatiq:<q>``: list of message ids; ``enqueue`` RPUSHes, ``fetch`` LPOPs, so the oldest is
  at index 0 (maintenance RPUSHes the ids of dead workers back, so we read ``HEAD`` ids).
- ``dramatiq:<q>.msgs``: hash id -> message JSON with ``message_timestamp`` (integer epoch ms,
  set when the message is first created and kept by retries).
- ``dramatiq:<q>.DQ`` and ``.DQ.msgs``: delayed messages (``send_with_options(delay=...)``,
  retries), with ``options.eta`` in epoch ms. Workers hold them in memory and enqueue a copy to
  ``<q>`` when due; a due one still here (no worker running) counts from its ``eta``.
- ``dramatiq:__heartbeats__``: zset worker id -> last heartbeat (ms);
  ``dramatiq:__acks__.<worker id>.<q>``: set of the ids a live worker has fetched (running or
  prefetched): reported as busy.

A message that was delayed or retried keeps its first ``message_timestamp``, so its age would
include the delay. Add ``broker.add_middleware(enqueue_stamp())`` to the app's broker and each
message carries the time it entered its queue (``options.enqueued_at_ms``), which wins.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from autoscaler.redact import quote
from autoscaler.sources import _redisjobs as redisjobs
from autoscaler.sources._redisjobs import Layout, Malformed, Probe, Probed, QueueState, Round

BACKEND = "dramatiq"
DEFAULT_NAMESPACE = "dramatiq"
#: dramatiq's ``DEFAULT_HEARTBEAT_TIMEOUT``: a worker silent this long is dead
HEARTBEAT_TIMEOUT_S = 60.0
#: the option our ``enqueue_stamp()`` middleware writes (epoch ms when the message was enqueued)
STAMP = "enqueued_at_ms"


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = DEFAULT_NAMESPACE

    def queue(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    def acks(self, worker: str, name: str) -> str:
        return f"{self.namespace}:__acks__.{worker}.{name}"

    @property
    def heartbeats(self) -> str:
        return f"{self.namespace}:__heartbeats__"


def queue_names(message_keys: Iterable[str], keys: Keys) -> list[str]:
    """Queue names from the ``<ns>:<q>.msgs`` and ``<ns>:<q>.DQ.msgs`` hashes (dead letters out)."""
    start = keys.queue("")
    names: set[str] = set()
    for key in message_keys:
        if not key.startswith(start) or not key.endswith(".msgs"):
            continue
        name = key[len(start) : -len(".msgs")]
        if name.endswith(".XQ") or name.startswith("__"):
            continue
        name = name.removesuffix(".DQ")
        if name:
            names.add(name)
    return sorted(names)


def waiting_since(raw: bytes, now: float) -> float:
    """When a message in a queue list began to wait (epoch seconds)."""
    message = redisjobs.json_object(raw)
    options = message.get("options")
    if isinstance(options, dict) and options.get(STAMP) is not None:
        return redisjobs.epoch_seconds(options[STAMP], f"options.{STAMP}", now)
    if "message_timestamp" not in message:
        raise Malformed("message has no message_timestamp")
    return redisjobs.epoch_seconds(message["message_timestamp"], "message_timestamp", now)


def due_at(raw: bytes, now: float) -> float:
    """When a delayed message is due (epoch seconds), from ``options.eta``."""
    options = redisjobs.json_object(raw).get("options")
    if not isinstance(options, dict) or "eta" not in options:
        raise Malformed("delayed message has no options.eta")
    eta = options["eta"]
    if isinstance(eta, bool) or not isinstance(eta, int | float):
        raise Malformed(f"options.eta is {quote(eta)}, not epoch milliseconds")
    return eta / 1000.0


def queue_state(
    length: int, messages: Sequence[bytes | None], delayed: Sequence[bytes | None], now: float
) -> QueueState:
    """One queue from its length, the messages of its first ``HEAD`` ids (``None``: the id has
    no message, which workers skip) and the first ``HEAD`` messages of its delay queue."""
    times: list[float | None] = []
    missing = 0
    for raw in messages:
        if raw is None:
            missing += 1
        else:
            times.append(waiting_since(raw, now))
    due = 0
    with redisjobs.about("delay queue"):
        for raw in delayed:
            if raw is not None and (at := due_at(raw, now)) <= now:
                times.append(at)
                due += 1
    no_message = "message ids have no message"
    return redisjobs.head_state(
        times, length, read=len(messages), missing=missing, due=due, what=no_message
    )


def probe(keys: Keys) -> Probe:
    def read(client: redis.Redis, queues: Sequence[str], now: float) -> Probed:
        head = Round(client, BACKEND)
        for name in queues:
            head.head(name, keys.queue(name))
            head.pipe.lrange(keys.queue(name + ".DQ"), 0, redisjobs.HEAD - 1)
            head.label(f"queue {quote(name)}")
        head.pipe.zrangebyscore(keys.heartbeats, (now - HEARTBEAT_TIMEOUT_S) * 1000, "+inf")
        head.label("the heartbeats set")
        first = head.run()
        workers = sorted(redisjobs.text(worker) for worker in first[-1])

        bodies = Round(client, BACKEND)
        for i, name in enumerate(queues):
            for suffix, ids in ((".msgs", first[3 * i + 1]), (".DQ.msgs", first[3 * i + 2])):
                if ids:
                    bodies.pipe.hmget(keys.queue(name + suffix), ids)
                    bodies.label(f"queue {quote(name)}")
            for worker in workers:
                bodies.pipe.scard(keys.acks(worker, name))
                bodies.label(f"queue {quote(name)}")
        second = iter(bodies.run())

        states: dict[str, QueueState] = {}
        busy = 0
        for i, name in enumerate(queues):
            length, ids, delayed_ids = first[3 * i : 3 * i + 3]
            messages: list[Any] = next(second) if ids else []
            delayed: list[Any] = next(second) if delayed_ids else []
            busy += sum(next(second) for _ in workers)
            with redisjobs.about(f"queue {quote(name)}"):
                states[name] = queue_state(length, messages, delayed, now)
        return states, busy

    return read


def enqueue_stamp() -> Any:
    """The app-side middleware: ``broker.add_middleware(enqueue_stamp())``.

    It records on each message the time it enters a queue, so that a delayed or retried message
    counts from when it became due rather than from when it was first sent. Needs dramatiq
    (imported here, in the app, not in the daemon).
    """
    import dramatiq

    class EnqueueStamp(dramatiq.Middleware):
        def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
            message.options[STAMP] = int(time.time() * 1000)

    return EnqueueStamp()


def layout(key_prefix: str | None) -> Layout:
    keys = Keys(key_prefix or DEFAULT_NAMESPACE)

    def discover(client: redis.Redis) -> tuple[list[str], bool]:
        found, finished = redisjobs.scan(client, keys.queue("*.msgs"), "hash")
        return queue_names(found, keys), finished

    return Layout(discover, probe(keys), redisjobs.SCAN_EVERY_S)


ADAPTER = redisjobs.job_adapter(BACKEND, layout)
