"""The policy's learned state in Redis, beside the lock: one JSON value under
``{<lock name>}:state`` (the lock's hash tag), kept for ``KEEP_S`` after the last save.

Config: the lock's (``AUTOSCALER_LOCK_URL`` else ``REDIS_URL``, ``AUTOSCALER_LOCK_NAME``, the
Redis TLS settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from autoscaler import redisconn
from autoscaler.configkit import DaemonConfig, EnvSettings
from autoscaler.locks.redis import RedisLockSettings, parse
from autoscaler.locks.state_common import decode, encode
from autoscaler.ports import StoreError
from autoscaler.redact import redact

KEEP_S = 30 * 86_400  # what was learned a month ago says little


class RedisStateStore:
    def __init__(
        self,
        url: str,
        name: str,
        client: redis.Redis | None = None,
        ssl_cert_reqs: str | None = None,
    ) -> None:
        self.key = f"{{{name}}}:state"
        self._client = client or redisconn.client(
            url, ssl_cert_reqs=ssl_cert_reqs, socket_timeout=2.0, socket_connect_timeout=2.0
        )

    def load(self) -> dict[str, object]:
        try:
            raw: Any = self._client.get(self.key)
        except redis.RedisError as exc:
            raise StoreError(redact(f"redis state {self.key!r}: {exc}")) from None
        return decode(raw)

    def save(self, snapshots: Mapping[str, object]) -> None:
        text = encode(snapshots)
        try:
            self._client.set(self.key, text, ex=KEEP_S)
        except redis.RedisError as exc:
            raise StoreError(redact(f"redis state {self.key!r}: {exc}")) from None

    def close(self) -> None:
        self._client.close()


def build(config: DaemonConfig, own: EnvSettings | None, scope: str) -> RedisStateStore:
    """Beside the lock: its URL and name, from the lock's own settings (``own``)."""
    lock = parse(config, own if isinstance(own, RedisLockSettings) else None, scope)
    return RedisStateStore(lock.url, lock.name, ssl_cert_reqs=lock.ssl_cert_reqs)
