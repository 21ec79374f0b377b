"""What the lock backends share: the lease value, the lock's name, and the lock's own error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from autoscaler.configkit import DaemonConfig, EnvSettings, Matches, Url, read
from autoscaler.ports import AutoscalerError, ConfigError
from autoscaler.redact import register_secret

_NAME = r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$"


class LockUnavailable(AutoscalerError):
    """The lock backend could not be reached or refused us; nobody may write on our behalf."""


@dataclass(frozen=True, slots=True)
class Held:
    """A lease this process holds. ``epoch`` grows by one on every acquisition (any process)."""

    epoch: int
    token: str
    deadline: float  # monotonic seconds after which the lease must not be trusted


class LockSettings(EnvSettings):
    """What every lock backend reads."""

    model_config = SettingsConfigDict(env_prefix="AUTOSCALER_LOCK_")

    name: Annotated[str, Matches(_NAME, "a lock name", "letters, digits, :._-")] | None = Field(
        None,
        description="what the daemons of one app contend for; daemons of different apps may "
        "share one Redis or database",
        json_schema_extra={"default": "`autoscaler:<platform>:<app>`"},
    )
    url: Url | None = Field(
        None,
        description="where the lock lives, e.g. a direct database URL when `DATABASE_URL` goes "
        "through a pooler",
        json_schema_extra={"default": "`REDIS_URL` / `DATABASE_URL`"},
    )


def lock_name(
    config: DaemonConfig, own: LockSettings | None = None, scope: str | None = None
) -> str:
    """``AUTOSCALER_LOCK_NAME``, else one name per platform and app (``scope``, which the
    platform adapter names) so that autoscalers of different apps sharing one Redis or database
    never contend."""
    own = own or read(LockSettings, config.env)
    if own.name is not None:
        return own.name
    platform = config.glob.platform
    app = scope if scope is not None else config.scope
    return f"autoscaler:{platform}:{app}" if app else f"autoscaler:{platform}"


def lock_where(
    config: DaemonConfig, own: LockSettings, scope: str | None, default: str | None, var: str
) -> tuple[str, str]:
    """The lock's URL (``AUTOSCALER_LOCK_URL`` or ``default`` from ``var``) and its name."""
    return lock_url(own, default, var), lock_name(config, own, scope)


def lock_url(own: LockSettings, default: str | None, default_var: str) -> str:
    """``AUTOSCALER_LOCK_URL`` (e.g. a direct database URL when ``DATABASE_URL`` goes through a
    pooler), else the backend's usual URL."""
    url = own.url or default
    if not url:
        raise ConfigError({default_var: "is required for this AUTOSCALER_LOCK"})
    register_secret(urlsplit(url).password)
    return url
