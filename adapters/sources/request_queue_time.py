"""Source ``request_queue_time``: the web signal, from the aggregates the app's middleware
publishes to Redis (``adapters/web``; wire format in ``adapters/web/wire.py`` and the README).

Each poll reads the aggregates of the last ``WINDOW`` seconds for the process, merges their
histograms and returns the configured aggregate. ``reading_from`` is the pure part:

- no aggregate in the window: ``value_ms`` None (the loop holds: missing, or stale when older
  aggregates exist; ``age_s`` is then the age of the newest one);
- aggregates but no samples, only heartbeats: 0.0 with ``samples`` 0, a valid "no traffic";
- no samples but requests whose header was unusable (garbage, far future, far past): None,
  because a broken header is not "no queue";
- Redis unreachable: ``SourceError``, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from adapters.web import wire
from autoscaler.config import ProcessSettings, Settings
from autoscaler.model import Metric, Reading
from autoscaler.ports import ConfigError, SourceError
from autoscaler.redact import redact

#: Drop reasons that mean "a routed request whose header we could not use".
_UNUSABLE = ("garbage", "future", "past")


def reading_from(
    members: Sequence[bytes | str],
    newest_t: float | None,
    *,
    now: float,
    window: float,
    aggregate: str,
    key: str,
) -> Reading:
    """Merge the members of one window into a reading. Pure; raises ``SourceError`` only when
    every member is unreadable (e.g. a publisher speaking a newer wire version)."""
    aggs: list[wire.Aggregate] = []
    bad: list[str] = []
    for member in members:
        try:
            aggs.append(wire.decode(member))
        except wire.WireError as exc:
            bad.append(str(exc))
    if bad and not aggs:
        raise SourceError(f"{key}: {len(bad)} aggregate(s) unreadable, e.g. {bad[0]}")
    age = None if newest_t is None else max(0.0, now - newest_t)
    if not aggs:
        why = (
            f"no aggregate in {key} for {age:.0f}s"
            if age is not None
            else f"nothing published to {key}: is the middleware installed with REDIS_URL set?"
        )
        return Reading(Metric.REQUEST_QUEUE_TIME, None, 0, age, warning=why)

    merged = wire.merge(aggs)
    requests = sum(a.requests for a in aggs)
    drops: dict[str, int] = {}
    for a in aggs:
        for reason, n in a.drops.items():
            drops[reason] = drops.get(reason, 0) + n
    newest: dict[str, wire.Aggregate] = {}
    for a in aggs:
        if a.publisher not in newest or a.t > newest[a.publisher].t:
            newest[a.publisher] = a
    busy = sum(a.busy for a in newest.values())
    age = max(0.0, now - max(a.t for a in aggs))

    notes = []
    if bad:
        notes.append(f"{len(bad)} unreadable aggregate(s) ignored ({bad[0]})")
    # requests without the header (health checks from inside the platform) are noise, except
    # when they are all there is: then say so, as the platform may not set the header at all
    shown = {k: v for k, v in drops.items() if k != "absent" or not merged.count}
    if shown:
        notes.append("not sampled: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    keep = min(a.keep for a in aggs)
    if keep < window:
        notes.append(f"the app keeps {keep:.0f}s of aggregates, less than the {window:.0f}s window")
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
        rate_per_s=requests / window,
    )


class RequestQueueTimeSource:
    metric = Metric.REQUEST_QUEUE_TIME

    def __init__(self, client: redis.Redis, process: str, window: float, aggregate: str) -> None:
        self.client = client
        self.key = wire.key_for(process)
        self.window = window
        self.aggregate = aggregate

    def sample(self, now: float) -> Reading:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zrangebyscore(self.key, now - self.window, "+inf")
            pipe.zrange(self.key, -1, -1, withscores=True)
            members, last = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise SourceError(redact(f"Redis {self.key}: {exc}")) from None
        newest_t = float(last[0][1]) if last else None
        return reading_from(
            members, newest_t, now=now, window=self.window, aggregate=self.aggregate, key=self.key
        )

    def check(self) -> str:
        try:
            self.client.ping()
            count = self.client.zcard(self.key)
        except (redis.RedisError, OSError) as exc:
            raise SourceError(redact(f"Redis {self.key}: {exc}")) from None
        return f"redis reachable; {count} aggregate(s) in {self.key}"

    def close(self) -> None:
        self.client.close()


def build(settings: Settings, process: ProcessSettings) -> RequestQueueTimeSource:
    url = settings.glob.redis_url
    if not url:
        raise ConfigError(
            {"REDIS_URL": f"is required by {process.var_prefix}SOURCE=request_queue_time"}
        )
    try:
        client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
    except ValueError as exc:
        raise ConfigError({"REDIS_URL": redact(str(exc))}) from None
    assert process.aggregate is not None
    return RequestQueueTimeSource(client, process.name, process.window, process.aggregate)
