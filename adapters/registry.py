"""Name -> adapter factory. Modules are imported lazily so that a backend's client library is
needed only when that backend is configured.

A source module defines ``build(settings: Settings, process: ProcessSettings) -> Source``;
a platform module defines ``build(settings: Settings) -> Platform``; a lock module defines
``build(settings: Settings) -> Lock``. Each may raise ``ConfigError`` naming its variables.
"""

from __future__ import annotations

import importlib
from typing import cast

from autoscaler.config import ProcessSettings, Settings
from autoscaler.ports import ConfigError, Lock, Platform, Source, StateStore

SOURCES = {
    "sim": "autoscaler.sources.sim",
    "request_queue_time": "autoscaler.sources.request_queue_time",
    "rq": "autoscaler.sources.rq",
    "celery": "autoscaler.sources.celery",
    "dramatiq": "autoscaler.sources.dramatiq",
    "arq": "autoscaler.sources.arq",
    "sidekiq": "autoscaler.sources.sidekiq",
    "procrastinate": "autoscaler.sources.procrastinate",
    "good_job": "autoscaler.sources.good_job",
    "solid_queue": "autoscaler.sources.solid_queue",
    "sql": "autoscaler.sources.sql",
    "http": "autoscaler.sources.http",
}

PLATFORMS = {
    "sim": "autoscaler.platforms.sim",
    "heroku": "autoscaler.platforms.heroku",
    "render": "autoscaler.platforms.render",
    "fly": "autoscaler.platforms.fly",
    "railway": "autoscaler.platforms.railway",
}

LOCKS = {
    "redis": "autoscaler.locks.redis",
    "postgres": "autoscaler.locks.postgres",
}

#: where the policy's learned state is kept: beside the lock
STATE_STORES = {
    "redis": "autoscaler.locks.state_redis",
    "postgres": "autoscaler.locks.state_postgres",
}


def _module(table: dict[str, str], name: str, var: str) -> object:
    if name not in table:
        raise ConfigError({var: f"unknown {name!r} (one of {', '.join(sorted(table))})"})
    try:
        return importlib.import_module(table[name])
    except ModuleNotFoundError as exc:
        raise ConfigError(
            {var: f"{name!r} is not available in this installation ({exc.name} is missing)"}
        ) from None


def build_source(settings: Settings, process: ProcessSettings) -> Source:
    module = _module(SOURCES, process.source, process.var_prefix + "SOURCE")
    return cast(Source, module.build(settings, process))  # type: ignore[attr-defined]


def build_platform(settings: Settings) -> Platform:
    module = _module(PLATFORMS, settings.glob.platform, "AUTOSCALER_PLATFORM")
    return cast(Platform, module.build(settings))  # type: ignore[attr-defined]


def build_lock(settings: Settings, kind: str) -> Lock:
    module = _module(LOCKS, kind, "AUTOSCALER_LOCK")
    return cast(Lock, module.build(settings))  # type: ignore[attr-defined]


def build_state_store(settings: Settings, kind: str) -> StateStore:
    module = _module(STATE_STORES, kind, "AUTOSCALER_LOCK")
    return cast(StateStore, module.build(settings))  # type: ignore[attr-defined]
