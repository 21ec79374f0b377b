"""What the job-queue sources that read Redis (rq, celery, dramatiq, arq, sidekiq) share.

Each backend module knows its own key layout and payloads; this module gives them one Redis
client (socket timeouts, no silent retries, the same calls on redis-py 5 and 6+), one way to turn
Redis trouble into a ``SourceError`` that names the queues, queue discovery with a cap and a
deterministic choice, and the assembly of per-queue findings into a ``Reading``.

A poll costs a constant number of pipelined round trips, whatever the queue lengths: each backend
reads a bounded number of entries from the oldest end of each queue (``HEAD``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

import redis
from pydantic import Field
from redis.backoff import NoBackoff
from redis.retry import Retry

from autoscaler import redisconn
from autoscaler.configkit import (
    DaemonConfig,
    Duration,
    ProcessConfig,
    SourceAdapter,
    Text,
    read,
)
from autoscaler.model import Metric, Reading
from autoscaler.ports import ConfigError, SourceError
from autoscaler.redact import quote, redact, register_secret
from autoscaler.sources._queues import QueueSettings

#: entries read from the oldest end of each queue per poll (bounds the cost of a poll)
HEAD = 10
#: default cap on the number of discovered queues (``AUTOSCALER_<P>_QUEUE_DISCOVERY_LIMIT``)
DISCOVERY_LIMIT = 20
#: default socket timeout for connect and each reply (``AUTOSCALER_<P>_REDIS_TIMEOUT``)
TIMEOUT_S = 2.0
#: a timestamp further in the future than this is not clock skew but a unit we do not know
FUTURE_SLACK_S = 3600.0
#: a timestamp before 2001-09-09 is in a unit we do not know (seconds read as milliseconds)
EPOCH_FLOOR_S = 1e9
#: SCAN-based discovery (celery, dramatiq) is repeated at most this often
SCAN_EVERY_S = 60.0
#: at most this many SCAN calls (of COUNT 1000) per discovery
SCAN_CALLS = 200


class Malformed(ValueError):
    """A payload or key that does not match the backend's layout; the message says why."""


@contextmanager
def about(what: str) -> Iterator[None]:
    """Prefix any ``Malformed`` raised inside with what was being read (a queue, a key)."""
    try:
        yield
    except Malformed as exc:
        raise Malformed(f"{what}: {exc}") from None


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue as one poll found it.

    ``due_at`` is when the oldest due waiting job became due (epoch seconds), ``None`` when no
    job is waiting. ``depth`` counts due waiting jobs. ``unknown`` says why the age of waiting
    jobs cannot be told (their payloads carry no timestamp); the queue then reports depth only.
    """

    due_at: float | None
    depth: int
    unknown: str | None = None


class RedisJobSettings(QueueSettings):
    """The variables every Redis job source reads (per process, ``AUTOSCALER_<P>_``)."""

    redis_timeout: Annotated[float, Duration(0.05, 60.0)] = Field(
        TIMEOUT_S, description="connect and read timeout of each Redis call"
    )


class PrefixedJobSettings(RedisJobSettings):
    """A Redis job source whose keys start with a configurable prefix."""

    key_prefix: Text | None = Field(
        None,
        description="a non-default key prefix of the backend (see the job backends page)",
        json_schema_extra={"default": "the backend's"},
    )


@dataclass(frozen=True, slots=True)
class Options:
    """What a Redis job source was configured with."""

    url: str
    queues: tuple[str, ...] | None
    discovery_limit: int
    timeout_s: float
    key_prefix: str | None
    ssl_cert_reqs: str | None = None  # AUTOSCALER_REDIS_SSL_CERT_REQS


def parse_options(
    config: DaemonConfig, process: ProcessConfig, own: RedisJobSettings | None = None
) -> Options:
    """``REDIS_URL`` and the process's own variables; raise ``ConfigError``."""
    own = own or read(PrefixedJobSettings, config.env, process.var_prefix)
    url = config.glob.redis_url
    if url is None:
        raise ConfigError(
            {"REDIS_URL": f"is required with {process.var_prefix}SOURCE={process.source}"}
        )
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError({"REDIS_URL": "must start with redis://, rediss:// or unix://"})
    queues = tuple(own.queues) if own.queues else None
    prefix = own.key_prefix if isinstance(own, PrefixedJobSettings) else None
    return Options(
        url,
        queues,
        own.queue_discovery_limit,
        own.redis_timeout,
        prefix,
        config.glob.redis_ssl_cert_reqs,
    )


def connect(url: str, timeout_s: float, ssl_cert_reqs: str | None = None) -> redis.Redis:
    """A client that fails fast: socket timeouts on connect and reads, no retries.

    Only calls common to redis-py 5.x and 6.x+ (6.0 added retries by default; we turn them off:
    the next poll is the retry).
    """
    register_secret(urlsplit(url).password)
    return redisconn.client(
        url,
        ssl_cert_reqs=ssl_cert_reqs,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def describe(url: str) -> str:
    """``host:port/db`` of a Redis URL, without credentials."""
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"


def run(pipe: Any, backend: str, labels: Sequence[str]) -> list[Any]:
    """Execute a pipeline; a failed connection or a failed command becomes ``SourceError``.

    ``labels[i]`` names the queue (or key) that command ``i`` was about, for the message.
    """
    try:
        results: list[Any] = pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        names = sorted(set(labels))
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise SourceError(
            redact(f"{backend}: cannot read {shown or 'Redis'}: {_why(exc)}")
        ) from exc
    for label, result in zip(labels, results, strict=True):
        if isinstance(result, redis.ResponseError) and "WRONGTYPE" in str(result):
            raise SourceError(
                redact(f"{backend}: {label}: a key has the wrong type for {backend}'s layout")
            )
        if isinstance(result, Exception):
            raise SourceError(redact(f"{backend}: {label}: {_why(result)}"))
    return results


def _why(exc: Exception) -> str:
    if isinstance(exc, redis.TimeoutError):
        return f"Redis timed out ({exc})"
    if isinstance(exc, redis.ConnectionError):
        return f"cannot connect to Redis ({exc})"
    return f"{type(exc).__name__}: {exc}"


def text(value: bytes | str | None) -> str:
    """A Redis reply as text; undecodable bytes are a layout problem."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise Malformed(f"is not UTF-8 text ({_preview(value)})") from None


def json_object(raw: bytes | str) -> dict[str, Any]:
    """Decode a JSON object payload or raise ``Malformed`` saying what is wrong with it."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise Malformed(f"is not JSON ({_preview(raw)})") from None
    if not isinstance(value, dict):
        raise Malformed(f"is JSON {type(value).__name__}, not an object ({_preview(raw)})")
    return value


def epoch_seconds(value: object, field: str, now: float) -> float:
    """A number that is epoch seconds or epoch milliseconds, told apart by magnitude.

    Epoch seconds stay below 1e11 until the year 5138; epoch milliseconds are above it since 1973.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Malformed(f"{field} is {quote(value)}, not an epoch timestamp")
    seconds = value / 1000.0 if value >= 1e11 else float(value)
    return check_time(seconds, field, now)


def check_time(seconds: float, field: str, now: float) -> float:
    if seconds < EPOCH_FLOOR_S or seconds > now + FUTURE_SLACK_S:
        raise Malformed(f"{field} {seconds!r} is not a plausible time (unknown unit or layout)")
    return seconds


def _preview(raw: bytes | str) -> str:
    return f"starts {quote(raw)}"


def cap(names: Iterable[str], limit: int) -> tuple[list[str], str | None]:
    """Sort discovered queue names and keep the first ``limit``; say so when some were left."""
    ordered = sorted(set(names))
    if len(ordered) <= limit:
        return ordered, None
    return ordered[:limit], (
        f"found {len(ordered)} queues, watching the first {limit} by name "
        f"({', '.join(ordered[:3])}, ...); set QUEUES or QUEUE_DISCOVERY_LIMIT"
    )


def members(client: redis.Redis, key: str) -> set[bytes]:
    """``SMEMBERS`` (typed: redis-py's stubs mix in the asyncio client)."""
    return cast(set[bytes], client.smembers(key))


def scan(client: redis.Redis, match: str, type_: str | None = None) -> tuple[list[str], bool]:
    """Key names matching a pattern, with a bounded number of SCAN calls.

    Returns the names and whether the scan finished.
    """
    cursor: int = 0
    found: list[str] = []
    for _ in range(SCAN_CALLS):
        reply = client.scan(cursor=cursor, match=match, count=1000, _type=type_)
        cursor, keys = cast(tuple[int, list[bytes]], reply)
        found.extend(text(k) for k in keys)
        if cursor == 0:
            return found, True
    return found, False


def reading(
    states: Mapping[str, QueueState],
    now: float,
    busy: int | None,
    warnings: Sequence[str] = (),
    *,
    finished: int | None = None,
) -> Reading:
    """Per-queue findings to one reading: the max over queues; depth only when any is unknown."""
    queues: dict[str, float] = {}
    notes = list(warnings)
    for name, state in states.items():
        if state.unknown is not None:
            notes.append(f"queue {quote(name)}: {state.unknown}")
        elif state.due_at is None:
            queues[name] = 0.0
        else:
            queues[name] = max(0.0, (now - state.due_at) * 1000.0)
    depth = sum(state.depth for state in states.values())
    unknown = any(state.unknown is not None for state in states.values())
    return Reading(
        metric=Metric.JOB_LATENCY,
        value_ms=None if unknown else max(queues.values(), default=0.0),
        samples=depth,
        age_s=0.0,
        queues=queues,
        depth=depth,
        busy=busy,
        warning="; ".join(notes) or None,
        finished=finished,
    )


def head_state(
    times: Sequence[float | None], length: int, *, read: int, missing: int, due: int, what: str
) -> QueueState:
    """A queue's state from the ages found at its head. ``missing`` of the ``read`` entries had
    nothing behind them (expired); when all had nothing and more wait, the age is unknown."""
    unknown = None
    if read and missing == read and length > read:
        unknown = f"the first {read} {what}, age unknown"
    return QueueState(oldest(times), length - missing + due, unknown)


def oldest(times: Iterable[float | None]) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


#: what a probe found: the state of each queue, and the busy jobs (``None``: unknown)
Probed = tuple[dict[str, QueueState], int | None]
#: ``probe(client, queues, now) -> (state per queue, busy jobs or None)``
Probe = Callable[[redis.Redis, Sequence[str], float], Probed]
#: ``discover(client) -> (queue names, whether the listing is complete)``
Discover = Callable[[redis.Redis], tuple[list[str], bool]]
#: ``count(client, queues, known) -> (jobs ended so far per worker, the workers serving the
#: queues now)``: the workers serving now and the ``known`` ones (from the reading before),
#: each with its counter of jobs ended, ``None`` for a worker whose record is gone
Count = Callable[
    [redis.Redis, Sequence[str], Iterable[str]], tuple[dict[str, int | None], set[str]]
]


def finished_since(
    before: Mapping[str, int] | None, now: Mapping[str, int | None], serving: Iterable[str]
) -> tuple[int | None, dict[str, int]]:
    """The jobs that ended between two readings from the workers' counters (``before``: the
    last reading's, ``None`` when there was none; ``now``: this one's), and the counters to keep
    (of the workers ``serving`` now). ``None`` (unknown) on a first reading, when a counter
    went backwards (a worker restarted under its name) or a worker seen before has left no
    record (it stopped and its record expired: what it ran since is unknown). A worker not seen
    before registered since the last reading: every job it ended came after it."""
    keep = {key: n for key in serving if (n := now.get(key)) is not None}
    if before is None:
        return None, keep
    total = 0
    for key, n in now.items():
        prev = before.get(key)
        if n is None:
            if prev is not None:
                return None, keep
            continue  # listed but not yet (or no longer) recorded, and never counted
        if prev is None:
            total += n
        elif n < prev:
            return None, keep
        else:
            total += n - prev
    for key in before:
        if key not in now:
            return None, keep
    return total, keep


class Round:
    """One pipelined round trip of a poll. Each command is labelled with what it reads (a queue,
    a key), so that a failure names it (see ``run``)."""

    def __init__(self, client: redis.Redis, backend: str) -> None:
        self.pipe = client.pipeline(transaction=False)
        self.backend = backend
        self.labels: list[str] = []

    def label(self, what: str, commands: int = 1) -> None:
        """The last ``commands`` commands added read ``what``."""
        self.labels += [what] * commands

    def head(self, queue: str, key: str, *, newest_first: bool = False) -> None:
        """A list's length and its ``HEAD`` oldest entries (at its end when ``newest_first``)."""
        self.pipe.llen(key)
        if newest_first:
            self.pipe.lrange(key, -HEAD, -1)
        else:
            self.pipe.lrange(key, 0, HEAD - 1)
        self.label(f"queue {quote(queue)}", 2)

    def run(self) -> list[Any]:
        return run(self.pipe, self.backend, self.labels)


@dataclass(frozen=True, slots=True)
class Layout:
    """How one backend's queues are found and read, for the shared ``RedisJobSource``."""

    discover: Discover
    probe: Probe
    discover_every_s: float = 0.0
    count: Count | None = None  # the workers' counters of jobs ended, where the backend keeps them


def job_adapter(
    backend: str,
    layout: Callable[[str | None], Layout],
    settings: type[RedisJobSettings] = PrefixedJobSettings,
) -> SourceAdapter[RedisJobSettings]:
    """A Redis job source's ``ADAPTER``: ``layout(key_prefix)`` gives its discovery and probe."""

    def build(
        config: DaemonConfig, process: ProcessConfig, own: RedisJobSettings | None = None
    ) -> RedisJobSource:
        own = own if own is not None else read(settings, config.env, process.var_prefix)
        options = parse_options(config, process, own)
        found = layout(options.key_prefix)
        return RedisJobSource(
            backend,
            options,
            found.discover,
            found.probe,
            discover_every_s=found.discover_every_s,
            count=found.count,
        )

    return SourceAdapter(settings, build, Metric.JOB_LATENCY)


class RedisJobSource:
    """A ``Source`` over one backend's probe.

    ``discover(client) -> (names, finished)`` lists queue names when ``QUEUES`` is unset;
    ``probe(client, queues, now) -> (states, busy)`` reads them. Both raise ``SourceError`` or
    ``Malformed`` (turned into a ``SourceError`` here).
    """

    metric = Metric.JOB_LATENCY

    def __init__(
        self,
        backend: str,
        options: Options,
        discover: Discover,
        probe: Probe,
        *,
        discover_every_s: float = 0.0,
        count: Count | None = None,
    ) -> None:
        self.backend = backend
        self._count = count
        # the queues and the workers' counters of the last reading (``finished_since``)
        self._counted: tuple[tuple[str, ...], dict[str, int]] | None = None
        self.options = options
        self.client = connect(options.url, options.timeout_s, options.ssl_cert_reqs)
        self._discover = discover
        self._probe = probe
        self._discover_every_s = discover_every_s
        self._discovered: tuple[float, list[str], str | None] | None = None

    def queues(self, now: float) -> tuple[list[str], str | None]:
        """The queues to read: configured, or discovered (cached ``discover_every_s``)."""
        if self.options.queues is not None:
            return list(self.options.queues), None
        cached = self._discovered
        if cached is not None and now - cached[0] < self._discover_every_s:
            return cached[1], cached[2]
        try:
            names, finished = self._discover(self.client)
        except redis.RedisError as exc:
            raise SourceError(
                redact(f"{self.backend}: cannot list the queues: {_why(exc)}")
            ) from exc
        except Malformed as exc:
            raise SourceError(redact(f"{self.backend}: a queue name {exc}")) from None
        chosen, note = cap(names, self.options.discovery_limit)
        if not finished:
            note = (note + "; " if note else "") + "the key scan stopped early; set QUEUES"
        if not chosen:
            note = (
                f"no {self.backend} queue found in Redis {describe(self.options.url)}; "
                "check REDIS_URL, or set QUEUES"
            )
        self._discovered = (now, chosen, note)
        return chosen, note

    def sample(self, now: float) -> Reading:
        names, note = self.queues(now)
        try:
            states, busy = self._probe(self.client, names, now)
            finished = self.finished(names)
        except Malformed as exc:
            raise SourceError(redact(f"{self.backend}: {exc}")) from None
        return reading(states, now, busy, [note] if note else [], finished=finished)

    def finished(self, names: Sequence[str]) -> int | None:
        """The jobs that ended since the last reading, where the backend counts them per worker
        (``None``: it does not, or unknown this time: ``finished_since``); the queues watched
        changing makes it unknown too."""
        if self._count is None:
            return None
        last = self._counted
        queues = tuple(names)
        before = last[1] if last is not None and last[0] == queues else None
        counts, serving = self._count(self.client, names, () if before is None else before)
        finished, keep = finished_since(before, counts, serving)
        self._counted = (queues, keep)
        return finished

    def check(self) -> str:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise SourceError(redact(f"{self.backend}: {_why(exc)}")) from exc
        names, note = self.queues(time.time())
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        found = "configured" if self.options.queues is not None else "found"
        line = f"{self.backend} on Redis {describe(self.options.url)}: {found} {shown or 'none'}"
        return line + (f" ({note})" if note else "")

    def close(self) -> None:
        self.client.close()
