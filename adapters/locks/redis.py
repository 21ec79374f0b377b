"""Leader election with a Redis lease: a key holding this process's random token, with a TTL.

- Acquire and renew are one Lua script: take the key if it is free (``SET NX PX`` and ``INCR``
  the epoch key), extend it if it holds our token, else report who holds it. Release deletes the
  key only if it holds our token. A foreign token can neither renew nor release.
- ``valid()`` does no I/O: it compares the monotonic clock with a deadline taken *before* the
  renewal was sent, minus a safety margin of a third of the TTL, so a lease is trusted for a
  write only while it surely has a third of its TTL left on the server.
- Any Redis error drops the lease at once (self-fencing) and raises ``LockUnavailable``.

Config: ``AUTOSCALER_LOCK_TTL`` (default three intervals, at least 15 s; it must be at least
twice ``AUTOSCALER_INTERVAL``), ``AUTOSCALER_LOCK_NAME``, ``AUTOSCALER_LOCK_URL`` (else
``REDIS_URL``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import redis
from pydantic import Field

from autoscaler import redisconn
from autoscaler.configkit import DaemonConfig, Duration, LockAdapter, read
from autoscaler.locks.common import Held, LockSettings, LockUnavailable, lock_where
from autoscaler.ports import ConfigError
from autoscaler.redact import redact

MIN_DEFAULT_TTL = 15.0

# KEYS: lease key, epoch key. ARGV: token, ttl in ms.
# Returns {1, epoch} renewed, {2, epoch} newly acquired, {0, epoch} held by someone else.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if holder then
  return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {2, epoch}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class RedisLockConfig:
    url: str
    name: str
    ttl: float  # seconds
    ssl_cert_reqs: str | None = None  # AUTOSCALER_REDIS_SSL_CERT_REQS, for rediss:// URLs

    @property
    def margin(self) -> float:
        return self.ttl / 3

    @property
    def key(self) -> str:
        return f"{{{self.name}}}:lease"  # hash tag: both keys live in one cluster slot

    @property
    def epoch_key(self) -> str:
        return f"{{{self.name}}}:epoch"


class RedisLockSettings(LockSettings):
    """The Redis lock's variables (``AUTOSCALER_LOCK_*``)."""

    ttl: Annotated[float, Duration(1.0, 86400.0)] | None = Field(
        None,
        description="lease lifetime (Redis and PostgreSQL); at least twice `AUTOSCALER_INTERVAL`",
        json_schema_extra={"default": "3 intervals, at least `15s`"},
    )


def parse_ttl(
    env: Mapping[str, str], interval: float, own: RedisLockSettings | None = None
) -> float:
    """The lease TTL in seconds; raises ``ConfigError`` naming ``AUTOSCALER_LOCK_TTL``."""
    own = own or read(RedisLockSettings, env)
    if own.ttl is None:
        return max(MIN_DEFAULT_TTL, 3 * interval)
    if own.ttl < 2 * interval:
        raise ConfigError(
            {
                "AUTOSCALER_LOCK_TTL": f"{own.ttl:g}s is too short: it must be at least 1s and "
                f"twice AUTOSCALER_INTERVAL ({interval:g}s), or the leader loses it between ticks"
            }
        )
    return own.ttl


def parse(
    config: DaemonConfig, own: RedisLockSettings | None = None, scope: str | None = None
) -> RedisLockConfig:
    own = own or read(RedisLockSettings, config.env)
    url, name = lock_where(config, own, scope, config.glob.redis_url, "REDIS_URL")
    return RedisLockConfig(
        url=url,
        name=name,
        ttl=parse_ttl(config.env, config.glob.interval, own),
        ssl_cert_reqs=config.glob.redis_ssl_cert_reqs,
    )


class RedisLock:
    """A Redis lease. One instance per process; its token never leaves this object."""

    def __init__(
        self,
        config: RedisLockConfig,
        client: redis.Redis | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        timeout = min(2.0, config.ttl / 5)
        self._client = client or redisconn.client(
            config.url,
            ssl_cert_reqs=config.ssl_cert_reqs,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE)
        self._token = secrets.token_hex(16)
        self._held: Held | None = None
        self._monotonic = monotonic

    def acquire(self) -> Held | None:
        sent_at = self._monotonic()
        try:
            reply: Any = self._acquire(
                keys=[self.config.key, self.config.epoch_key],
                args=[self._token, int(self.config.ttl * 1000)],
            )
        except redis.RedisError as exc:
            self._held = None
            raise LockUnavailable(redact(f"redis lock {self.config.name!r}: {exc}")) from None
        status, epoch = int(reply[0]), int(reply[1])
        if status == 0:
            self._held = None
            return None
        self._held = Held(epoch, self._token, sent_at + self.config.ttl - self.config.margin)
        return self._held

    def valid(self, lease: object) -> bool:
        held = self._held
        return held is not None and lease is held and self._monotonic() < held.deadline

    def release(self, lease: object) -> None:
        if lease is not self._held or self._held is None:
            return
        self._held = None
        try:
            self._release(keys=[self.config.key], args=[self._token])
        except redis.RedisError as exc:
            name, ttl = self.config.name, self.config.ttl
            raise LockUnavailable(
                redact(f"redis lock {name!r}: release failed ({exc}); it expires within {ttl:g}s")
            ) from None

    def check(self) -> str:
        try:
            self._client.ping()
            holder: Any = self._client.exists(self.config.key)
            epoch: Any = self._client.get(self.config.epoch_key)
        except redis.RedisError as exc:
            raise LockUnavailable(redact(f"redis lock {self.config.name!r}: {exc}")) from None
        state = "held by a daemon" if holder else "free"
        return (
            f"redis lock {self.config.name!r}: reachable, {state}, epoch {int(epoch or 0)}, "
            f"ttl {self.config.ttl:g}s"
        )

    def close(self) -> None:
        self._client.close()


def build(
    config: DaemonConfig, own: RedisLockSettings | None = None, scope: str | None = None
) -> RedisLock:
    return RedisLock(parse(config, own, scope))


ADAPTER = LockAdapter(RedisLockSettings, parse, build)
