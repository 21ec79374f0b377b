"""The app side of request queue time: per-process recording and the background flusher.

``Recorder.begin`` runs on the request path: it appends the arrival time and the raw header to
a bounded list and notes the request's start; ``Recorder.end`` appends its (start, end) to
another bounded list; nothing else. A daemon thread, started lazily in each process (after a fork
too), swaps the list out every ``interval`` seconds, parses and aggregates it into a histogram
and adds that to the current 5-second slot hash in Redis (``wire``), a heartbeat with ``n = 0``
when there was no traffic, with the seconds spent serving requests in the interval (busy time:
the requests that ended, and those still in flight, counted within the interval only). Redis
errors drop that interval's samples, count them (``d:lost`` in
the next flush that gets through) and are logged once per outage."""

from __future__ import annotations

import atexit
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

from autoscaler import redisconn
from autoscaler.durations import parse_duration
from autoscaler.web import header, wire

log = logging.getLogger("autoscaler.web")

DEFAULT_INTERVAL = 5.0
DEFAULT_MAX_BODY = 100_000
MIN_KEEP = 300.0
_PROCESS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class PublisherConfig:
    redis_url: str | None
    process: str = "web"
    interval: float = DEFAULT_INTERVAL
    keep: float = MIN_KEEP
    max_body: int = DEFAULT_MAX_BODY
    publisher: str = "local"
    warnings: tuple[str, ...] = ()
    ssl_cert_reqs: str | None = None  # AUTOSCALER_REDIS_SSL_CERT_REQS, for rediss:// URLs


def publisher_config(
    env: Mapping[str, str], *, redis_url: str | None = None, process: str | None = None
) -> PublisherConfig:
    """Read the app's environment. Bad values fall back to defaults with a warning: a typo in
    an autoscaler variable must not stop the app from booting."""
    warnings: list[str] = []
    url = redis_url or redisconn.url_from_env(env)
    try:
        ssl_cert_reqs = redisconn.cert_reqs(env.get(redisconn.CERT_REQS_VAR))
    except ValueError as exc:
        warnings.append(f"{exc}; using redis-py's default (required)")
        ssl_cert_reqs = None
    name = process or env.get("AUTOSCALER_PROCESS") or ""
    if not name:
        dyno = env.get("DYNO", "")  # Heroku: web.1, worker.2, run.1234
        name = dyno.split(".", 1)[0] if dyno else "web"
    if not _PROCESS.match(name):
        warnings.append(f"AUTOSCALER_PROCESS={name!r} is not a process type; using 'web'")
        name = "web"

    interval = DEFAULT_INTERVAL
    raw = env.get("AUTOSCALER_FLUSH_INTERVAL")
    if raw:
        try:
            interval = parse_duration(raw, "s")
            if not 1.0 <= interval <= 60.0:
                raise ValueError(f"{raw!r} is outside 1s..60s")
        except ValueError as exc:
            warnings.append(f"AUTOSCALER_FLUSH_INTERVAL: {exc}; using {DEFAULT_INTERVAL:g}s")
            interval = DEFAULT_INTERVAL

    max_body = DEFAULT_MAX_BODY
    raw = env.get("AUTOSCALER_MAX_REQUEST_BYTES")
    if raw:
        try:
            max_body = int(raw.strip())
            if max_body < 0:
                raise ValueError
        except ValueError:
            warnings.append(
                f"AUTOSCALER_MAX_REQUEST_BYTES={raw!r} is not a byte count; using 100000"
            )
            max_body = DEFAULT_MAX_BODY

    keep = max(MIN_KEEP, 3 * interval)
    window_var = "AUTOSCALER_" + name.upper().replace("-", "_") + "_WINDOW"
    raw = env.get(window_var)
    if raw:
        try:
            keep = max(keep, parse_duration(raw, "s") + 60.0)
        except ValueError as exc:
            warnings.append(f"{window_var}: {exc}")

    host = env.get("DYNO") or socket.gethostname()
    return PublisherConfig(
        url, name, interval, keep, max_body, host, tuple(warnings), ssl_cert_reqs=ssl_cert_reqs
    )


@dataclass(slots=True)
class _Interval:
    hist: wire.Histogram = field(default_factory=wire.Histogram)
    requests: int = 0
    skew: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    busy_s: float = 0.0  # seconds spent serving requests in the interval


#: what the request path appends: (wall-clock seconds at entry, header value, Content-Length)
Arrival = tuple[float, bytes | str | None, bytes | str | None]

_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for rec in list(_recorders):
        rec._forget_parent()


def _at_exit() -> None:
    for rec in list(_recorders):
        rec.stop(timeout=1.0)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)


def summarize(arrivals: list[Arrival], max_body: int) -> _Interval:
    """Parse an interval's arrivals into a histogram and counts (runs in the flusher)."""
    cur = _Interval(requests=len(arrivals))
    hist, drops = cur.hist, cur.drops
    for t, raw, length in arrivals:
        ms, outcome = header.queue_ms(raw, t * 1000.0)
        if outcome == header.OK and length and _too_big(length, max_body):
            outcome = "big"
        if outcome == header.OK:
            hist.add(ms)
        elif outcome == header.SKEW:
            cur.skew += 1
            hist.add(0.0)
        else:
            drops[outcome] = drops.get(outcome, 0) + 1
    return cur


def busy_seconds(
    ended: list[tuple[float | None, float]],
    in_flight: list[float],
    since: float,
    now: float,
    missed: int = 0,
) -> float:
    """Seconds spent serving requests between ``since`` and ``now`` (the integral of the
    requests in flight): each ended ``(start, end)`` and each start still in flight, cut to the
    interval. ``missed`` ended requests that the capped list could not hold count as the mean
    of the others. A start of ``None`` (a request begun before a fork) is skipped."""
    total = 0.0
    for start, end in ended:
        if start is None:
            continue
        d = (end if end < now else now) - (start if start > since else since)
        if d > 0.0:
            total += d
    if missed and ended:
        total += missed * total / len(ended)
    for start in in_flight:
        d = now - (start if start > since else since)
        if d > 0.0:
            total += d
    return total


def _too_big(content_length: bytes | str, max_body: int) -> bool:
    try:
        return int(content_length) > max_body
    except ValueError:
        return False


def queue_flush(
    pipe: redis.client.Pipeline,
    *,
    process: str,
    publisher: str,
    now: float,
    inc: wire.Increments,
    keep: float,
) -> None:
    """Queue one flush's commands on a pipeline (wire format v1; see ``wire``)."""
    key = wire.slot_key(process, wire.slot_of(now))
    seen = wire.seen_key(process)
    for name, n in inc.ints.items():
        pipe.hincrby(key, name, n)
    for name, x in inc.floats.items():
        pipe.hincrbyfloat(key, name, x)
    pipe.hset(key, mapping=inc.fixed)
    pipe.expire(key, int(keep))
    pipe.zadd(seen, {publisher: now})
    pipe.zremrangebyscore(seen, "-inf", now - keep)
    pipe.expire(seen, int(keep))


class Recorder:
    """Per-process measurements and their flusher thread.

    The request path only appends ``(time, header, length)`` to a list and notes the start
    under a token in the in-flight dict; at the end it pops the token and appends
    ``(start, end)`` to the ended list: single atomic operations under the GIL, so no lock is
    taken per request. The flusher swaps the lists out, copies the in-flight starts, waits
    ``GRACE`` for a request thread that fetched an old list just before the swap, then parses
    and aggregates. Each list is capped at ``MAX_BUFFERED`` entries per interval; beyond that
    arrivals are counted as ``overflow`` and ended requests count as the mean of the others.
    """

    GRACE = 0.05
    MAX_BUFFERED = 50_000

    def __init__(self, config: PublisherConfig) -> None:
        self.config = config
        self.flushes = 0  # aggregates published (for tests and the benchmark)
        self.failures = 0
        self._forget_parent()
        _recorders.add(self)

    def _forget_parent(self) -> None:
        """Fresh state and no thread: used at construction and in a forked child."""
        self._start_lock = threading.Lock()
        self._running = False
        self._pid = -1  # the process whose flusher is running
        self._buf: list[Arrival] = []
        self._active: dict[int, float] = {}  # token -> start (wall clock)
        self._ended: list[tuple[float | None, float]] = []  # (start, end) of ended requests
        self._since = time.time()  # start of the current interval
        self._overflow = 0
        self._ended_overflow = 0
        self._lost = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- request path ------------------------------------------------------------------------

    def begin(self, token: int, raw: bytes | str | None, length: bytes | str | None) -> None:
        """One request entered the app (``token`` identifies it until ``end``). Never raises,
        never blocks: no I/O, no lock, no parsing."""
        if not self._running:
            self.ensure_started()
        t = time.time()
        buf = self._buf
        if len(buf) < self.MAX_BUFFERED:
            buf.append((t, raw, length))
        else:
            self._overflow += 1  # only under overload; may undercount a little, never raises
        self._active[token] = t

    def end(self, token: int) -> None:
        """The request left the app: note how long it was served. Never raises."""
        ended = self._ended
        if len(ended) < self.MAX_BUFFERED:
            ended.append((self._active.pop(token, None), time.time()))
        else:
            self._active.pop(token, None)
            self._ended_overflow += 1

    # -- flusher -----------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start this process's flusher if it is not running (first request, or after fork)."""
        pid = os.getpid()
        with self._start_lock:
            if self._pid == pid:
                return
            self._stop = threading.Event()
            thread = threading.Thread(
                target=self._run, name="autoscaler-queue-time-flusher", daemon=True
            )
            self._thread = thread
            self._pid = pid
            self._running = True
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Flush what is left and stop the thread (also called at interpreter exit)."""
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            self._stop.set()
            thread.join(timeout)

    def _run(self) -> None:
        client: redis.Redis | None = None
        interval = self.config.interval
        deadline = time.monotonic() + interval
        failing = False
        stopping = False
        while not stopping:
            stopping = self._stop.wait(max(0.0, deadline - time.monotonic()))
            deadline = max(deadline + interval, time.monotonic() + interval / 2)
            try:
                if client is None:
                    client = self._connect()
                self.publish(client)
                if failing:
                    log.warning("queue time: publishing to Redis works again")
                failing = False
            except Exception as exc:  # any failure: drop, count, keep serving
                self.failures += 1
                if not failing:
                    log.warning("queue time: cannot publish to Redis, samples dropped: %s", exc)
                failing = True
        if client is not None:
            client.close()

    def _connect(self) -> redis.Redis:
        assert self.config.redis_url is not None
        return redisconn.client(
            self.config.redis_url,
            ssl_cert_reqs=self.config.ssl_cert_reqs,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
        )

    def swap(self) -> tuple[_Interval, int]:
        """Take the interval's measurements: (the interval, requests in flight now)."""
        now = time.time()
        buf, self._buf = self._buf, []
        ended, self._ended = self._ended, []
        in_flight = list(self._active.copy().values())
        since, self._since = self._since, now
        overflow, self._overflow = self._overflow, 0
        missed, self._ended_overflow = self._ended_overflow, 0
        time.sleep(self.GRACE)
        cur = summarize(buf, self.config.max_body)
        cur.busy_s = busy_seconds(ended, in_flight, since, now, missed)
        if overflow:
            cur.requests += overflow
            cur.drops["overflow"] = overflow
        return cur, len(in_flight)

    def publish(self, client: redis.Redis) -> None:
        """Add this interval to its slot hash and mark this publisher as seen (one MULTI)."""
        cur, busy = self.swap()
        cfg = self.config
        now = time.time()
        lost = self._lost
        drops = dict(cur.drops)
        if lost:
            drops["lost"] = lost
        inc = wire.increments(
            cur.hist,
            interval=cfg.interval,
            keep=cfg.keep,
            requests=cur.requests,
            busy=busy,
            skew=cur.skew,
            drops=drops,
            busy_s=cur.busy_s,
        )
        try:
            pipe = client.pipeline(transaction=True)
            queue_flush(
                pipe,
                process=cfg.process,
                publisher=f"{cfg.publisher}:{os.getpid()}",
                now=now,
                inc=inc,
                keep=cfg.keep,
            )
            pipe.execute()
        except BaseException:
            self._lost += cur.hist.count
            raise
        self._lost -= lost
        self.flushes += 1
