"""Source ``request_queue_time``: the web signal, from the aggregates the app's middleware
publishes to Redis (``adapters/web``; wire format in ``adapters/web/wire.py`` and the README).

Each poll reads the 5-second slot hashes that cover the last ``WINDOW`` seconds (already merged
across app processes by Redis), merges them and returns the configured aggregate.
``reading_from`` is the pure part:

- nothing published in the window: ``value_ms`` None (the loop holds: missing, or stale when
  older data exists; ``age_s`` is then the age of the newest flush);
- flushes but no samples, only heartbeats: 0.0 with ``samples`` 0, a valid "no traffic";
- no samples but requests whose header was unusable (garbage, far future, far past): None,
  because a broken header is not "no queue";
- Redis unreachable: ``SourceError``, never 0.

``in_use`` is the mean number of requests being served at once across the formation over the
window (busy seconds per second): the busy time (``bs``, wire addition 1.1) of the complete
slots in the window, from the first slot anyone published in, divided by the seconds they
span. ``None`` when no publisher reports busy time, or when some flushes in those slots do not
(a deploy mixing old and new publishers) or a slot there is unreadable: a partial sum would
read as an app less busy than it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from autoscaler import redisconn
from autoscaler.configkit import DaemonConfig, NoSettings, ProcessConfig, SourceAdapter
from autoscaler.model import Metric, Reading
from autoscaler.ports import ConfigError, SourceError
from autoscaler.redact import redact
from autoscaler.web import wire

#: Drop reasons that mean "a routed request whose header we could not use".
_UNUSABLE = ("garbage", "future", "past")


def reading_from(
    slots: Mapping[int, Mapping[bytes, bytes] | Mapping[str, str]],
    newest_t: float | None,
    *,
    now: float,
    window: float,
    aggregate: str,
    where: str,
) -> Reading:
    """Merge the slot hashes of one window into a reading. ``slots`` maps slot number to the
    hash (empty or absent when nobody published in it); ``newest_t`` is the newest flush time
    in the ``seen`` set. Pure; raises ``SourceError`` only when every slot is unreadable (e.g.
    a publisher speaking another wire version)."""
    good: dict[int, wire.Slot] = {}
    bad: dict[int, str] = {}
    for number, fields in slots.items():
        if not fields:
            continue
        try:
            good[number] = wire.decode_slot(fields)
        except wire.WireError as exc:
            bad[number] = str(exc)
    if bad and not good:
        raise SourceError(f"{where}: {len(bad)} slot(s) unreadable, e.g. {_first(bad)}")
    age = None if newest_t is None else max(0.0, now - newest_t)
    if not good:
        why = (
            f"nothing published under {where} for {age:.0f}s"
            if age is not None
            else f"nothing published under {where}: is the middleware installed with REDIS_URL?"
        )
        return Reading(Metric.REQUEST_QUEUE_TIME, None, 0, age, warning=why)

    notes = []
    if newest_t is None:  # slots but no seen set: a publisher that skips it; age from the slot
        age = max(0.0, now - (max(good) + 1) * wire.SLOT_SECONDS)
        notes.append("no publisher in the seen set; age taken from the newest slot")
    merged = wire.merge(good.values())
    requests = sum(s.requests for s in good.values())
    drops: dict[str, int] = {}
    for slot in good.values():
        for reason, n in slot.drops.items():
            drops[reason] = drops.get(reason, 0) + n
    # the newest complete slot tells how many requests the fleet has in flight
    complete = [n for n in good if n < wire.slot_of(now)]
    busy = round(good[max(complete)].busy) if complete else None

    if bad:
        notes.append(f"{len(bad)} unreadable slot(s) ignored ({_first(bad)})")
    # requests without the header (health checks from inside the platform) are noise, except
    # when they are all there is: then say so, as the platform may not set the header at all
    shown = {k: v for k, v in drops.items() if k != "absent" or not merged.count}
    if shown:
        notes.append("not sampled: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    keep = min(s.keep for s in good.values())
    if keep < window:
        notes.append(f"the app keeps {keep:.0f}s of data, less than the {window:.0f}s window")
    in_use, in_use_note = _in_use(good, bad, now, window)
    if in_use_note:
        notes.append(in_use_note)
    unusable = sum(drops.get(r, 0) for r in _UNUSABLE)
    value: float | None = merged.value(aggregate)
    if merged.count == 0 and unusable:
        value = None
        notes.insert(0, f"{unusable} request(s) with an unusable X-Request-Start and no samples")
    return Reading(
        Metric.REQUEST_QUEUE_TIME,
        value,
        merged.count,
        age,
        busy=busy,
        warning="; ".join(notes) or None,
        # the requests of the window, or of the shorter span the app keeps
        rate_per_s=requests / (keep if 0 < keep < window else window),
        in_use=in_use,
    )


def _first(bad: dict[int, str]) -> str:
    return bad[min(bad)]


def _in_use(
    good: Mapping[int, wire.Slot], bad: Mapping[int, str], now: float, window: float
) -> tuple[float | None, str | None]:
    """Mean requests in service at once over the window's complete slots, and why not."""
    last = wire.slot_of(now) - 1  # the newest complete slot
    numbers = [n for n in range(wire.slot_of(now - window), last + 1) if n in good or n in bad]
    used = [good[n] for n in numbers if n in good]
    reporting = sum(slot.busy_flushes for slot in used)
    if not reporting:
        return None, None  # publishers without the addition: nothing to say
    flushes = sum(slot.flushes for slot in used)
    if reporting < flushes:
        return None, f"in_use unknown: {reporting} of {flushes} flushes report busy time"
    if len(used) < len(numbers):
        return None, "in_use unknown: a slot in the window is unreadable"
    span = (last - numbers[0] + 1) * wire.SLOT_SECONDS
    return sum(slot.busy_s for slot in used) / span, None


def window_slots(now: float, window: float) -> list[int]:
    """The slots that overlap the last ``window`` seconds, plus the next one (a publisher whose
    clock runs a little ahead writes there)."""
    return list(range(wire.slot_of(now - window), wire.slot_of(now) + 2))


class RequestQueueTimeSource:
    metric = Metric.REQUEST_QUEUE_TIME

    def __init__(self, client: redis.Redis, process: str, window: float, aggregate: str) -> None:
        self.client = client
        self.process = process
        self.window = window
        self.aggregate = aggregate
        self.where = f"{wire.PREFIX}{process}:*"

    def sample(self, now: float) -> Reading:
        numbers = window_slots(now, self.window)
        try:
            pipe = self.client.pipeline(transaction=False)
            for number in numbers:
                pipe.hgetall(wire.slot_key(self.process, number))
            pipe.zrange(wire.seen_key(self.process), -1, -1, withscores=True)
            *hashes, last = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise SourceError(redact(f"Redis {self.where}: {exc}")) from None
        newest_t = float(last[0][1]) if last else None
        return reading_from(
            dict(zip(numbers, hashes, strict=True)),
            newest_t,
            now=now,
            window=self.window,
            aggregate=self.aggregate,
            where=self.where,
        )

    def check(self) -> str:
        try:
            self.client.ping()
            publishers = self.client.zcard(wire.seen_key(self.process))
        except (redis.RedisError, OSError) as exc:
            raise SourceError(redact(f"Redis {self.where}: {exc}")) from None
        return f"redis reachable; {publishers} app process(es) publishing under {self.where}"

    def close(self) -> None:
        self.client.close()


def build(
    config: DaemonConfig, process: ProcessConfig, own: NoSettings | None = None
) -> RequestQueueTimeSource:
    url = config.glob.redis_url
    if not url:
        raise ConfigError(
            {"REDIS_URL": f"is required by {process.var_prefix}SOURCE=request_queue_time"}
        )
    try:
        client = redisconn.client(
            url,
            ssl_cert_reqs=config.glob.redis_ssl_cert_reqs,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
        )
    except ValueError as exc:
        raise ConfigError({"REDIS_URL": redact(str(exc))}) from None
    assert process.aggregate is not None
    return RequestQueueTimeSource(client, process.name, process.window, process.aggregate)


ADAPTER = SourceAdapter(NoSettings, build, Metric.REQUEST_QUEUE_TIME)
