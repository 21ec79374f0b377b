"""What the lock backends share: the lease value, the lock's name, and the lock's own error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from autoscaler.config import Settings
from autoscaler.ports import AutoscalerError, ConfigError
from autoscaler.redact import register_secret

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$")


class LockUnavailable(AutoscalerError):
    """The lock backend could not be reached or refused us; nobody may write on our behalf."""


@dataclass(frozen=True, slots=True)
class Held:
    """A lease this process holds. ``epoch`` grows by one on every acquisition (any process)."""

    epoch: int
    token: str
    deadline: float  # monotonic seconds after which the lease must not be trusted


def lock_name(settings: Settings) -> str:
    """``AUTOSCALER_LOCK_NAME``, else one name per platform and app so that autoscalers of
    different apps sharing one Redis or database never contend."""
    env = settings.env
    raw = env.get("AUTOSCALER_LOCK_NAME")
    if raw is not None:
        name = raw.strip()
        if not _NAME.match(name):
            raise ConfigError(
                {"AUTOSCALER_LOCK_NAME": f"{raw!r} is not a lock name (letters, digits, :._-)"}
            )
        return name
    glob = settings.glob
    render = sorted(p.render_service_id for p in settings.processes.values() if p.render_service_id)
    app = {
        "heroku": glob.heroku_app_name,
        "fly": glob.fly_app_name,
        "railway": glob.railway_environment_id,
        "render": render[0] if render else None,
    }.get(glob.platform) or ""
    return f"autoscaler:{glob.platform}:{app}" if app else f"autoscaler:{glob.platform}"


def lock_url(settings: Settings, default: str | None, default_var: str) -> str:
    """``AUTOSCALER_LOCK_URL`` (e.g. a direct database URL when ``DATABASE_URL`` goes through a
    pooler), else the backend's usual URL."""
    url = (settings.env.get("AUTOSCALER_LOCK_URL") or "").strip() or default
    if not url:
        raise ConfigError({default_var: "is required for this AUTOSCALER_LOCK"})
    register_secret(urlsplit(url).password)
    return url
