"""Name -> adapter. Modules are imported lazily so that a backend's client library is needed
only when that backend is configured (and, for the strict check of unknown variables and the
docs' table, when it is installed).

Each adapter module exports ``ADAPTER``: a ``SourceAdapter``, ``PlatformAdapter`` or
``LockAdapter`` (``autoscaler.configkit``) holding its own settings models and its ``build``.
Adding an adapter is its one file plus one line here.

``autoscaler.config.load`` reads each configured adapter's settings through this catalog; the
``build_*`` functions below build an adapter from those settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from autoscaler.config import GlobalSettings, ProcessSettings, Settings, doc_rows
from autoscaler.configkit import (
    Duration,
    EnvSettings,
    Int,
    LockAdapter,
    PlatformAdapter,
    SourceAdapter,
    Text,
    Variable,
    variables,
)
from autoscaler.ports import ConfigError, Lock, Platform, Source, StateStore

if TYPE_CHECKING:
    from autoscaler.history import HistoryStore
    from autoscaler.sim.live import LiveApp

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

#: where the policy's learned state is kept: beside the lock (the lock's own settings)
STATE_STORES = {
    "redis": "autoscaler.locks.state_redis",
    "postgres": "autoscaler.locks.state_postgres",
}


class AppSettings(EnvSettings):
    """Variables the middleware reads in the app's web processes (``autoscaler.web.publisher``,
    which parses them with the standard library only, to keep the app side light). Listed here
    so that the daemon, which often shares the app's config vars, knows them."""

    model_config = SettingsConfigDict(env_prefix="AUTOSCALER_")

    process: Text | None = Field(
        None,
        description="the process type the middleware publishes under",
        json_schema_extra={"default": "from `DYNO` (Heroku), else `web`"},
    )
    flush_interval: Annotated[float, Duration(1.0, 60.0)] = Field(
        5.0, description="how often each app process adds its samples to Redis"
    )
    max_request_bytes: Annotated[int, Int(0, None, "bytes")] = Field(
        100_000,
        description="requests with a larger body are not sampled (their upload time "
        "would count as queue time)",
    )


A = TypeVar("A", SourceAdapter[Any], PlatformAdapter[Any, Any], LockAdapter[Any])


def _adapter(table: dict[str, str], name: str, var: str, kind: type[A]) -> A:
    if name not in table:
        raise ConfigError({var: f"{name!r} is not one of {', '.join(sorted(table))}"})
    try:
        module = importlib.import_module(table[name])
    except ModuleNotFoundError as exc:
        raise ConfigError(
            {var: f"{name!r} is not available in this installation ({exc.name} is missing)"}
        ) from None
    adapter = getattr(module, "ADAPTER", None)
    if not isinstance(adapter, kind):
        raise TypeError(f"{table[name]}.ADAPTER is not a {kind.__name__}")
    return adapter


def source_adapter(name: str, var: str) -> SourceAdapter[Any]:
    return _adapter(SOURCES, name, var, SourceAdapter)


def platform_adapter(name: str, var: str) -> PlatformAdapter[Any, Any]:
    return _adapter(PLATFORMS, name, var, PlatformAdapter)


def lock_adapter(name: str, var: str) -> LockAdapter[Any]:
    return _adapter(LOCKS, name, var, LockAdapter)


def lock_names() -> Iterable[str]:
    return tuple(LOCKS)


def _installed() -> Iterator[
    tuple[str, SourceAdapter[Any] | PlatformAdapter[Any, Any] | LockAdapter[Any]]
]:
    """Every adapter whose module imports here (one that does not cannot be configured)."""
    for table, kind, get in (
        (PLATFORMS, "platform", platform_adapter),
        (SOURCES, "source", source_adapter),
        (LOCKS, "lock", lock_adapter),
    ):
        for name in table:
            try:
                yield f"{kind} {name}", get(name, "")
            except ConfigError:
                continue


def app_variables() -> Iterator[Variable]:
    """The variables the middleware reads in the app (the daemon often shares its config)."""
    return variables(AppSettings)


def global_variables() -> Iterator[tuple[str, Variable]]:
    """(owner, variable) of every variable read once: the core's, the app side's, each
    platform's and each lock's."""
    for v in doc_rows(GlobalSettings):
        yield "core", v
    for v in variables(AppSettings):
        yield "app", v
    for owner, adapter in _installed():
        if isinstance(adapter, PlatformAdapter | LockAdapter):
            for v in variables(adapter.settings):
                yield owner, v


def process_variables() -> Iterator[tuple[str, Variable]]:
    """(owner, variable) of every per-process variable, named by its suffix (``MIN``)."""
    for v in doc_rows(ProcessSettings, ""):
        yield "core", v
    for owner, adapter in _installed():
        if isinstance(adapter, SourceAdapter):
            for v in variables(adapter.settings, ""):
                yield owner, v
        elif isinstance(adapter, PlatformAdapter):
            for v in variables(adapter.process_settings, ""):
                yield owner, v


# ---- building ------------------------------------------------------------------------------------


def build_source(settings: Settings, process: ProcessSettings) -> Source:
    adapter = source_adapter(process.source, process.var_prefix + "SOURCE")
    own = settings.source_settings.get(process.name)
    return adapter.build(settings, process, own)


def build_platform(settings: Settings) -> Platform:
    adapter = platform_adapter(settings.glob.platform, "AUTOSCALER_PLATFORM")
    assert settings.platform_settings is not None  # load() read them or raised
    own, per_process = settings.platform_settings
    return adapter.build(settings, own, per_process)


def build_lock(settings: Settings, kind: str) -> Lock:
    adapter = lock_adapter(kind, "AUTOSCALER_LOCK")
    return adapter.build(settings, settings.lock_settings, settings.scope)


def build_state_store(settings: Settings, kind: str) -> StateStore:
    """The learned-state store beside the ``kind`` lock (its module's ``build``)."""
    lock_adapter(kind, "AUTOSCALER_LOCK")  # a known and installed lock
    module = importlib.import_module(STATE_STORES[kind])
    store: StateStore = module.build(settings, settings.lock_settings, settings.scope)
    return store


def build_simulated(settings: Settings, app: LiveApp) -> tuple[Platform, dict[str, Source]]:
    """The ``sim`` platform and a ``sim`` source per process on ``app``, a simulated app on a
    clock of the caller's (``autoscaler.sim.owntraffic.record_simulated`` runs the daemon on a
    fake one), instead of the process-wide app that ``build_platform`` and ``build_source``
    share."""
    from autoscaler.platforms.sim import SimPlatform
    from autoscaler.sources.sim import SimSource

    sources: dict[str, Source] = {name: SimSource(app, p) for name, p in settings.processes.items()}
    return SimPlatform(app, 1.0), sources


def open_history_store(env: Mapping[str, str]) -> HistoryStore | None:
    """The history store the config vars name (``autoscaler.history.store_kind``), or ``None``
    (``off``). Raises ``ValueError`` when asked for a store whose URL is not set."""
    from autoscaler.history import history_name, store_kind

    kind = store_kind(env)
    name = history_name(env)
    if kind == "off":
        return None
    if kind == "memory":
        from autoscaler.stores.memory import MemoryStore

        return MemoryStore()
    if kind == "redis":
        url = env.get("AUTOSCALER_REDIS_URL") or env.get("REDIS_URL")
        if not url:
            raise ValueError("AUTOSCALER_HISTORY=redis needs REDIS_URL")
        from autoscaler.stores.redis import RedisStore

        return RedisStore.from_url(url, name)
    if kind == "postgres":
        url = env.get("DATABASE_URL")
        if not url:
            raise ValueError("AUTOSCALER_HISTORY=postgres needs DATABASE_URL")
        from autoscaler.stores.postgres import PostgresStore

        schema = (env.get("AUTOSCALER_LOCK_SCHEMA") or "").strip() or None
        return PostgresStore(url, name, schema=schema)
    raise ValueError(f"AUTOSCALER_HISTORY={kind!r}: one of auto, redis, postgres, memory, off")


# ---- the docs' table -----------------------------------------------------------------------------

DOCS_BEGIN = "<!-- generated by scripts/config_docs.py from the settings models: do not edit -->"
DOCS_END = "<!-- /generated -->"


def _table(rows: Iterable[Variable], prefix: str = "") -> list[str]:
    out = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for v in rows:
        out.append(f"| `{prefix}{v.name}` | {v.default} | {v.allowed} | {v.meaning} |")
    return out


def _grouped(
    table: dict[str, str], get: Any, field: str
) -> list[tuple[list[str], type[EnvSettings]]]:
    """Adapters of one kind grouped by the settings model they share (in table order)."""
    groups: dict[type[EnvSettings], list[str]] = {}
    for name in table:
        try:
            model = getattr(get(name, ""), field)
        except ConfigError:
            continue
        groups.setdefault(model, []).append(name)
    return [(names, model) for model, names in groups.items() if model.model_fields]


def _named(rows: Iterable[Variable], names: dict[str, Iterable[str]]) -> list[Variable]:
    """Rows whose accepted values are the registered adapters' names."""
    return [
        Variable(v.name, v.default, "one of " + ", ".join(names[v.name]), v.meaning)
        if v.name in names
        else v
        for v in rows
    ]


def config_docs() -> str:
    """The variables of the core and of every installed adapter, as Markdown tables."""
    p = "AUTOSCALER_<P>_"
    choices: dict[str, Iterable[str]] = {
        "AUTOSCALER_PLATFORM": PLATFORMS,
        "AUTOSCALER_LOCK": ("auto", "none", *LOCKS),
        "SOURCE": SOURCES,
    }
    glob, per = (
        _named(doc_rows(GlobalSettings), choices),
        _named(doc_rows(ProcessSettings, ""), choices),
    )
    lines = [DOCS_BEGIN, "", "### Global", "", *_table(glob)]
    lines += ["", "### Per process", "", *_table(per, p)]
    lines += ["", "### Platforms"]
    for names, model in _grouped(PLATFORMS, platform_adapter, "settings"):
        lines += ["", f"`AUTOSCALER_PLATFORM={' or '.join(names)}`:", ""]
        rows = list(variables(model))
        for pnames, pmodel in _grouped(PLATFORMS, platform_adapter, "process_settings"):
            if set(pnames) & set(names):
                rows += [
                    Variable(p + v.name, v.default, v.allowed, v.meaning)
                    for v in variables(pmodel, "")
                ]
        lines += _table(rows)
    lines += ["", "### Sources (per process, with `AUTOSCALER_<P>_SOURCE`)"]
    for names, model in _grouped(SOURCES, source_adapter, "settings"):
        lines += ["", f"`{'`, `'.join(names)}`:", "", *_table(variables(model, ""), p)]
    lines += ["", "### Locks (with `AUTOSCALER_LOCK`)"]
    for names, model in _grouped(LOCKS, lock_adapter, "settings"):
        lines += ["", f"`{'`, `'.join(names)}`:", "", *_table(variables(model))]
    lines += ["", "### In the app (read by the middleware)", "", *_table(variables(AppSettings))]
    return "\n".join([*lines, "", DOCS_END])


def docs_with_table(text: str) -> str:
    """``text`` (docs/configuration.md) with its generated block replaced by ``config_docs()``."""
    start, end = text.index(DOCS_BEGIN), text.index(DOCS_END) + len(DOCS_END)
    return text[:start] + config_docs() + text[end:]
