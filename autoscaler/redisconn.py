"""One way to open Redis for the daemon's sources, the lock and the app's middleware alike.

``AUTOSCALER_REDIS_URL``, when set, is used instead of ``REDIS_URL`` (a variable the platform
owns: Heroku's Key-Value Store rewrites it on credential rotation).
``AUTOSCALER_REDIS_SSL_CERT_REQS`` (``none``, ``optional`` or ``required``) says how a
``rediss://`` server's certificate is checked: Heroku's Key-Value Store presents a self-signed
certificate, which needs ``none``. It applies only to ``rediss://`` URLs; an ``ssl_cert_reqs``
query parameter in the URL itself still wins.

This module imports only ``redis``: the middleware loads it in every web process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

URL_VAR = "AUTOSCALER_REDIS_URL"
CERT_REQS_VAR = "AUTOSCALER_REDIS_SSL_CERT_REQS"
CERT_REQS = ("none", "optional", "required")


def url_from_env(env: Mapping[str, str]) -> str | None:
    """``AUTOSCALER_REDIS_URL``, else ``REDIS_URL``, else ``None`` (blank counts as unset)."""
    for var in (URL_VAR, "REDIS_URL"):
        value = (env.get(var) or "").strip()
        if value:
            return value
    return None


def cert_reqs(raw: str | None) -> str | None:
    """The normalised setting, ``None`` when unset; ``ValueError`` naming the choices."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    if value not in CERT_REQS:
        raise ValueError(f"{CERT_REQS_VAR}={raw!r} is not one of {', '.join(CERT_REQS)}")
    return value


def client(url: str, *, ssl_cert_reqs: str | None = None, **kwargs: Any) -> redis.Redis:
    """``redis.Redis.from_url`` with the TLS certificate check applied to ``rediss://`` URLs."""
    if ssl_cert_reqs is not None and url.lower().startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = ssl_cert_reqs
        if ssl_cert_reqs == "none":  # nothing to check the host name against
            kwargs["ssl_check_hostname"] = False
    return redis.Redis.from_url(url, **kwargs)
