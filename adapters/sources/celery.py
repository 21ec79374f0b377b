"""Job latency read from Celery's Redis broker (kombu's Redis transport), read-only.

Layout (kombu 5.7.0 ``kombu/transport/redis.py``, ``kombu/transport/virtual/base.py``; celery
5.7.0 ``celery/app/amqp.py``; the same steps, separator and prefix option in kombu 5.6.2):

- One list per queue and priority step: ``<q>``, ``<q>\\x06\\x163``, ``<q>\\x06\\x166``,
  ``<q>\\x06\\x169`` (``PRIORITY_STEPS = [0, 3, 6, 9]``, ``sep = '\\x06\\x16'``). Publishing
  LPUSHes, workers RPOP, so the oldest message of each list is at its tail.
- A message is JSON ``{"body", "headers", "properties", ...}``; ``headers.eta`` (ISO 8601) holds a
  countdown or ETA. Celery stores **no publish time**: the app adds one with a one-line
  ``before_task_publish`` hook (``adapters/sources/celery_hook.py``), which writes
  ``properties.published_at`` (epoch seconds, as judoscale's hook does). Stamps written by other
  autoscalers' hooks are read too: ``headers.enqueued_at`` (ISO 8601 or epoch seconds) and
  ``headers.run_at``. Without any stamp the age of a waiting task cannot be known: the queue then
  reports its depth only, with a warning, and never a 0.
- A task with a future ETA is not due (without a worker it sits in the list; with one, the
  worker holds it until due). A past one counts from its ETA (or its publish time if later).
- ``unacked``: hash of the tasks workers have reserved (running or prefetched), in every queue:
  reported as busy.
- ``_kombu.binding.<exchange>``: sets of ``routing_key\\x06\\x16pattern\\x06\\x16queue``; used to
  discover queue names when ``AUTOSCALER_<P>_QUEUES`` is unset.

Transport option ``global_keyprefix`` prefixes every key: set ``AUTOSCALER_<P>_KEY_PREFIX``.
Custom ``priority_steps`` or ``sep`` transport options are not supported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from autoscaler.redact import quote
from autoscaler.sources import _redisjobs as redisjobs
from autoscaler.sources._redisjobs import Layout, Malformed, Probe, Probed, QueueState, Round

BACKEND = "celery"
SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
HOOK_HINT = "add the publish hook: see the README, 'Celery'"
_SYSTEM_QUEUE_SUFFIXES = (".celery.pidbox", ".reply.celery.pidbox")


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = ""

    def lists(self, queue: str) -> list[str]:
        """The queue's list for each priority step, lowest step (the default) first."""
        return [self.prefix + queue + (f"{SEP}{step}" if step else "") for step in PRIORITY_STEPS]

    @property
    def unacked(self) -> str:
        return self.prefix + "unacked"

    @property
    def bindings(self) -> str:
        return self.prefix + "_kombu.binding.*"


@dataclass(frozen=True, slots=True)
class Timing:
    """What one message says about when it can run: ``due_at`` (epoch seconds) or ``None`` when
    it carries no time at all; ``future`` when its ETA has not come yet."""

    due_at: float | None
    future: bool = False


def parse_iso(value: object, field: str) -> float:
    """An ISO 8601 time from a header; a naive one is UTC (Celery's ``enable_utc`` default)."""
    if not isinstance(value, str):
        raise Malformed(f"{field} is {quote(value)}, not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{field} {quote(value)} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def stamp(headers: dict[str, Any], properties: dict[str, Any], now: float) -> float | None:
    """The publish time a hook wrote, if any (epoch seconds)."""
    if properties.get("published_at") is not None:
        return redisjobs.epoch_seconds(properties["published_at"], "properties.published_at", now)
    for field in ("enqueued_at", "run_at"):
        value = headers.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return redisjobs.epoch_seconds(value, f"headers.{field}", now)
        if value is not None:
            return redisjobs.check_time(
                parse_iso(value, f"headers.{field}"), f"headers.{field}", now
            )
    return None


def timing(raw: bytes, now: float) -> Timing:
    """When a message in a queue list can run, from its JSON."""
    message = redisjobs.json_object(raw)
    headers = message.get("headers")
    properties = message.get("properties")
    if not isinstance(headers, dict) or not isinstance(properties, dict):
        raise Malformed("message has no headers or properties object (not a kombu message)")
    published = stamp(headers, properties, now)
    eta = headers.get("eta")
    if eta is None:
        return Timing(published)
    eta_s = parse_iso(eta, "headers.eta")
    if eta_s > now:
        return Timing(None, future=True)
    return Timing(eta_s if published is None else max(eta_s, published))


def queue_state(lists: Sequence[tuple[int, Sequence[bytes]]], now: float) -> QueueState:
    """One queue from, per priority list, its length and its last ``HEAD`` messages."""
    times: list[float | None] = []
    depth = 0
    unstamped = 0
    blind = 0
    for length, tail in lists:
        timings = [timing(raw, now) for raw in tail]
        future = sum(1 for t in timings if t.future)
        depth += length - future
        unstamped += sum(1 for t in timings if not t.future and t.due_at is None)
        times.extend(t.due_at for t in timings)
        if tail and future == len(tail) and length > len(tail):
            blind += length - len(tail)
    unknown = None
    if unstamped:
        unknown = f"{unstamped} waiting task(s) carry no publish time, depth only; {HOOK_HINT}"
    elif blind:
        unknown = (
            f"the oldest {redisjobs.HEAD} messages are all scheduled for later and "
            f"{blind} more were not read, depth only"
        )
    return QueueState(redisjobs.oldest(times), depth, unknown)


def queue_names(bindings: Iterable[bytes]) -> list[str]:
    """Queue names from ``_kombu.binding.*`` members, without Celery's own control queues."""
    names: set[str] = set()
    for member in bindings:
        parts = redisjobs.text(member).split(SEP)
        if len(parts) != 3:
            continue
        name = parts[2]
        if name and not name.endswith(_SYSTEM_QUEUE_SUFFIXES) and not name.startswith("celeryev."):
            names.add(name)
    return sorted(names)


def probe(keys: Keys) -> Probe:
    def read(client: redis.Redis, queues: Sequence[str], now: float) -> Probed:
        first = Round(client, BACKEND)
        for name in queues:
            for key in keys.lists(name):
                first.head(name, key, newest_first=True)
        first.pipe.hlen(keys.unacked)
        first.label("the unacked hash")
        replies = first.run()

        states: dict[str, QueueState] = {}
        per_queue = 2 * len(PRIORITY_STEPS)
        for i, name in enumerate(queues):
            mine = replies[i * per_queue : (i + 1) * per_queue]
            lists = [(mine[j], mine[j + 1]) for j in range(0, per_queue, 2)]
            with redisjobs.about(f"queue {quote(name)}"):
                states[name] = queue_state(lists, now)
        return states, int(replies[-1])

    return read


def layout(key_prefix: str | None) -> Layout:
    keys = Keys(key_prefix or "")

    def discover(client: redis.Redis) -> tuple[list[str], bool]:
        found, finished = redisjobs.scan(client, keys.bindings, "set")
        pipe = client.pipeline(transaction=False)
        for key in found:
            pipe.smembers(key)
        return queue_names(m for group in pipe.execute() for m in group), finished

    return Layout(discover, probe(keys), redisjobs.SCAN_EVERY_S)


ADAPTER = redisjobs.job_adapter(BACKEND, layout)
