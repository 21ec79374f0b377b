"""Configuration: config vars (and a ``.env`` file) to validated settings.

The core model holds only what the core reads: ``GlobalSettings`` (``AUTOSCALER_*``, the shared
``REDIS_URL``/``DATABASE_URL``) and one ``ProcessSettings`` per managed process
(``AUTOSCALER_<P>_*``). Each adapter declares its own settings models beside its code; ``load``
asks the catalog (``autoscaler.registry``, passed in) for the models of the configured platform,
sources and lock, reads them too, and refuses any ``AUTOSCALER_*`` variable that nothing reads.
``load()`` returns ``Settings`` or raises one ``ConfigError`` naming every offending variable.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, SettingsConfigDict

from autoscaler.configkit import (
    Bool,
    Choice,
    Csv,
    Duration,
    EnvSettings,
    Float,
    Int,
    LockAdapter,
    PlatformAdapter,
    Problems,
    SourceAdapter,
    Text,
    Url,
    Variable,
    process_prefix,
    read,
    read_each,
    variables,
)
from autoscaler.durations import MAX_SECONDS
from autoscaler.model import Metric
from autoscaler.ports import ConfigError
from autoscaler.schedule import Schedule, parse_schedule

AGGREGATES = ("avg", "p50", "p90", "p95", "p99", "max")
_PROCESS_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class GlobalSettings(EnvSettings):
    """The global variables the core reads."""

    model_config = SettingsConfigDict(env_prefix="AUTOSCALER_")

    platform: Text = Field(
        "sim",
        description="where the app runs (see the platforms below); `sim` is a built-in "
        "simulated app",
    )
    processes: Csv | None = Field(
        None,
        description="the process types to manage, comma-separated",
        json_schema_extra={"default": "`web` (`web,worker` on `sim`)"},
    )
    dry_run: Bool = Field(
        False,
        description="decide and log, never change the formation; also the maintenance switch: "
        "set it during an incident or a migration and the daemon keeps deciding and logging but "
        "writes nothing",
    )
    interval: Annotated[float, Duration(1.0, 3600.0)] = Field(
        5.0, description="how often sources are polled and decisions made"
    )
    tick_timeout: Annotated[float, Duration(0.0, 3600.0, above=True)] | None = Field(
        None,
        description="how long one source poll may take before it counts as failed; each lock "
        "call may take half of it (then: not leader)",
        json_schema_extra={"default": "80% of the interval, 1 s to 30 s"},
    )
    log_format: Annotated[str, Choice("auto", "logfmt", "json", "console")] = Field(
        "auto",
        description="how log lines are written; `auto`: `console` in a terminal, else `logfmt`",
    )
    log_level: Annotated[str, Choice("debug", "info", "warning", "error", "critical")] = Field(
        "info", description="the least severe level logged"
    )
    metrics_port: Annotated[int, Int(1, 65535)] | None = Field(
        None, description="serve `/metrics` (Prometheus) and `/healthz` on this port"
    )
    metrics_host: Text = Field(
        "127.0.0.1", description="the address they bind to; set `0.0.0.0` only if you mean it"
    )
    lock: Text = Field(
        "auto",
        description="`redis`, `postgres`, `none`; `auto` picks redis if `REDIS_URL` is set, else "
        "postgres if `DATABASE_URL` is set, else none (always none on `sim`)",
    )
    notify_url: Url | None = Field(None, description="Slack-compatible incoming webhook for alerts")
    alert_after: Annotated[float, Duration(0.0, MAX_SECONDS)] = Field(
        600.0,
        description="how long a problem (signal missing, pinned at the maximum, failing writes) "
        "lasts before an alert",
    )
    sentry_dsn: Text | None = Field(
        None,
        validation_alias="SENTRY_DSN",
        description="report alerts and unexpected errors to Sentry (needs the `sentry` extra)",
    )
    timezone: Text = Field("UTC", description="IANA zone for schedules, e.g. `Europe/Paris`")
    sim_speed: Annotated[float, Float(0.001, 10_000, "simulated seconds per second")] = Field(
        60.0, description="`sim` only: simulated seconds per wall-clock second"
    )
    sim_seed: Annotated[int, Int()] | None = Field(
        None,
        description="`sim` only: seed of the simulated traffic",
        json_schema_extra={"default": "random"},
    )
    history: Annotated[str, Choice("auto", "redis", "postgres", "memory", "off")] = Field(
        "auto",
        description="where the history the dashboard shows is kept; `auto`: Redis if set, else "
        "PostgreSQL if set, else memory on `sim`, else none (docs/dashboard.md)",
    )
    digest: Annotated[str, Choice("off", "weekly")] = Field(
        "off",
        description="`weekly`: a summary of the week to `AUTOSCALER_NOTIFY_URL` (instance-hours, "
        "minutes within the band, the worst minute, scale events, alerts, and what `tune` on the "
        "week would change)",
    )
    dashboard_port: Annotated[int, Int(0, 65535)] | None = Field(
        None, description="the daemon serves the dashboard itself on this port"
    )
    dashboard_host: Text = Field(
        "127.0.0.1",
        description="the address the daemon's dashboard binds to; any other than loopback "
        "needs `AUTOSCALER_DASHBOARD_TOKEN`",
    )
    dashboard_token: Text | None = Field(
        None,
        description="the password of the dashboard (16 characters or more); required to mount "
        "it in the app or to serve it beyond loopback",
    )
    platform_redis_url: Url | None = Field(
        None,
        validation_alias="REDIS_URL",
        description="request samples, Redis-based job backends, the lock",
    )
    autoscaler_redis_url: Url | None = Field(
        None,
        validation_alias="AUTOSCALER_REDIS_URL",
        description="a Redis to use instead of `REDIS_URL` (a variable the platform owns)",
    )
    redis_ssl_cert_reqs: Annotated[str, Choice("none", "optional", "required")] | None = Field(
        None,
        description="how a `rediss://` server's certificate is checked; `none` for Heroku's "
        "Key-Value Store (self-signed)",
        json_schema_extra={"default": "`required` (redis-py's)"},
    )
    database_url: Url | None = Field(
        None, validation_alias="DATABASE_URL", description="SQL job backends, the lock"
    )

    @property
    def redis_url(self) -> str | None:
        """The Redis the daemon reads and locks: ``AUTOSCALER_REDIS_URL``, else ``REDIS_URL``."""
        return self.autoscaler_redis_url or self.platform_redis_url


def _auto(value: Any) -> Any:
    """``auto`` (any case) means ``None``: the policy decides."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return value


class ProcessSettings(EnvSettings):
    """One managed process's core settings. Durations are seconds; thresholds too (the
    ``*_ms`` properties give milliseconds). ``name``, ``var_prefix``, ``metric`` and ``timezone``
    are set by ``load``, not read from a variable."""

    model_config = SettingsConfigDict(arbitrary_types_allowed=True)

    name: str = "web"
    var_prefix: str = "AUTOSCALER_WEB_"
    metric: Metric = Metric.REQUEST_QUEUE_TIME
    timezone: str = "UTC"

    min: Annotated[int, Int(0, 10_000, "instances")] = Field(
        1, description="the fewest instances (workers may use 0)"
    )
    max: Annotated[int, Int(1, 10_000, "instances")] = Field(10, description="the most instances")
    source: Text = Field(
        "request_queue_time",
        description="where the signal comes from (see the sources below)",
        json_schema_extra={
            "default": "`request_queue_time` for `web` (`sim` on the sim platform); required "
            "otherwise"
        },
    )
    up_threshold: Annotated[float, Duration(0.0, MAX_SECONDS, above=True)] | None = Field(
        None,
        description="scale up above this; a bare number is seconds (write `200ms`, not `200`)",
        json_schema_extra={"default": "web `200ms`; jobs `10s`"},
    )
    down_threshold: Annotated[float, Duration(0.0, MAX_SECONDS)] | None = Field(
        None,
        description="scale down below this; must be below the up threshold",
        json_schema_extra={"default": "web `50ms`; jobs `2s`"},
    )
    aggregate: Annotated[str, Choice(*AGGREGATES)] | None = Field(
        None,
        description="how the window's samples are summed up",
        json_schema_extra={"default": "web `p95`; jobs `max`"},
    )
    window: Annotated[float, Duration(1.0, 3600.0)] = Field(
        30.0, description="how far back request samples count"
    )
    up_step: Annotated[int, Int(1, 1000, "instances")] | None = Field(
        None,
        description="instances added by an upscale on the signal; `auto` sizes it to the "
        "arrival rate and the backlog once what one instance carries is known, else to the "
        "overload (at most doubling)",
        json_schema_extra={"default": "`auto`"},
    )
    down_step: Annotated[int, Int(1, 1000, "instances")] = Field(
        1,
        description="instances removed by a downscale when nothing says what the load needs (no "
        "rate, or only a floor that allows no more); once the load is known, downscales go to "
        "what it needs (see the policy)",
    )
    up_sensitivity: Annotated[float, Duration(0.0, MAX_SECONDS)] = Field(
        0.0, description="how long the signal must stay above the band before an upscale"
    )
    up_cooldown: Annotated[float, Duration(0.0, MAX_SECONDS)] | None = Field(
        None,
        description="no further upscale on the signal, the forecast or the early signal for "
        "this long after one, while the new instances boot (only an arrival rate that alone "
        "needs more instances than run scales up within it); `auto`: the boot time learned "
        "where the platform reports which instances serve (a web process's at most 60 s; "
        "`60s` until a boot is read). It is also the time an upscale drains the backlog "
        "within, and how long a worker stays idle (no job due or running; or `DOWN_DELAY` if "
        "shorter) before it goes to `MIN`; when set, also how long a changed formation settles "
        "before it teaches capacity (`auto`: 60 s)",
        json_schema_extra={"default": "`auto`"},
    )
    down_delay: Annotated[float, Duration(0.0, MAX_SECONDS)] = Field(
        120.0,  # the same as autoscaler.policy.DEFAULT_DOWN_DELAY
        description="how long the signal must stay below the band before a downscale, and "
        "between any change and a downscale (after a downscale, one sized by the load waits "
        "only `WINDOW`); a downscale goes to the highest recommendation of this window (the "
        "stabilisation window)",
    )
    headroom: Annotated[float, Float(0.0, 10.0, "standard deviations")] = Field(
        1.8,
        description="capacity is kept for the arrival rate's recent mean plus this many standard "
        "deviations of it (0 keeps capacity for the current rate only), by the forecast and by "
        "downscales sized to the load; a reading further than 3 deviations from the mean (or "
        "a tenth of the mean, if more) counts as that far, so a burst does not hold capacity "
        "for its own height. Kept in full while at least 0.5% of the readings of the last 6 hours "
        "were above the band, in proportion below that; a reading during such a burst (the rate "
        "beyond that clip, above the mean) counts as one within the band, since no spare for "
        "the usual spread would have carried it (the `headroom` field of the decision log "
        "says how much is in force). Higher: fewer slow minutes, more instances",
    )
    schedule: Text | None = Field(
        None,
        description="time-of-day overrides of the bounds, e.g. `mon-fri 08:00-18:00 min=4; "
        "sat,sun max=3`",
    )
    min_samples: Annotated[int, Int(0, 100_000, "requests")] = Field(
        5,
        description="request signal from fewer requests than this (but more than 0) is *sparse* "
        "(see the policy)",
    )
    provision_timeout: Annotated[float, Duration(0.0, MAX_SECONDS, above=True)] = Field(
        600.0,
        description="where the platform reports which instances serve (Fly.io, Heroku), no further "
        "upscale once fewer serve than run for this long on end; an alert says so",
    )
    stale_after: Annotated[float, Duration(0.0, MAX_SECONDS, above=True)] | None = Field(
        None,
        description="data older than this is stale: hold",
        json_schema_extra={"default": "twice the window, at least `60s`"},
    )

    @model_validator(mode="before")
    @classmethod
    def _autos(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("up_step", "up_cooldown"):
                if key in data:
                    data[key] = _auto(data[key])
        return data

    @property
    def up_threshold_ms(self) -> float:
        assert self.up_threshold is not None
        return float(self.up_threshold) * 1000.0

    @property
    def down_threshold_ms(self) -> float:
        assert self.down_threshold is not None
        return float(self.down_threshold) * 1000.0

    @property
    def parsed_schedule(self) -> Schedule | None:
        if self.schedule is None:
            return None
        return parse_schedule(self.schedule, ZoneInfo(self.timezone))

    @model_validator(mode="after")
    def _defaults_and_cross_checks(self) -> ProcessSettings:
        jobs = self.metric is Metric.JOB_LATENCY
        set_ = object.__setattr__
        if self.up_threshold is None:
            set_(self, "up_threshold", 10.0 if jobs else 0.2)
        if self.down_threshold is None:
            set_(self, "down_threshold", 2.0 if jobs else 0.05)
        if self.aggregate is None:
            set_(self, "aggregate", "max" if jobs else "p95")
        if self.stale_after is None:
            set_(self, "stale_after", max(60.0, 2 * self.window))
        p = self.var_prefix
        problems: dict[str, str] = {}
        if self.min > self.max:
            problems[f"{p}MIN"] = f"{self.min} is above {p}MAX={self.max} (instances)"
        up, down = float(self.up_threshold or 0), float(self.down_threshold or 0)
        if down >= up:
            problems[f"{p}DOWN_THRESHOLD"] = (
                f"{down * 1000:g}ms must be below {p}UP_THRESHOLD {up * 1000:g}ms"
            )
        if self.schedule is not None:
            try:
                sched = parse_schedule(self.schedule, ZoneInfo(self.timezone))
            except ValueError as exc:
                problems[f"{p}SCHEDULE"] = str(exc)
            else:
                for rule in sched.rules:
                    if rule.min is not None and rule.min > self.max and rule.max is None:
                        problems[f"{p}SCHEDULE"] = f"min={rule.min} is above {p}MAX={self.max}"
                    if rule.max is not None and rule.max < self.min and rule.min is None:
                        problems[f"{p}SCHEDULE"] = f"max={rule.max} is below {p}MIN={self.min}"
        if problems:
            raise Problems(problems)
        return self


#: fields of ``ProcessSettings`` that ``load`` sets (not variables)
PROCESS_FIXED = ("name", "var_prefix", "metric", "timezone")
#: per-process variable suffixes the core reads
PROCESS_VARS = tuple(f.upper() for f in ProcessSettings.model_fields if f not in PROCESS_FIXED)


class Catalog(Protocol):
    """What ``load`` asks of the adapters' registry (``autoscaler.registry``)."""

    def source_adapter(self, name: str, var: str) -> SourceAdapter[Any]: ...
    def platform_adapter(self, name: str, var: str) -> PlatformAdapter[Any, Any]: ...
    def lock_adapter(self, name: str, var: str) -> LockAdapter[Any]: ...
    def lock_names(self) -> Iterable[str]: ...
    def global_variables(self) -> Iterable[tuple[str, Variable]]: ...
    def process_variables(self) -> Iterable[tuple[str, Variable]]: ...
    def app_variables(self) -> Iterable[Variable]: ...


class Settings:
    """Everything the daemon was configured with: the core's settings, each configured adapter's
    own settings, the raw merged environment, and the warnings ``check`` and the start line
    show."""

    def __init__(
        self,
        glob: GlobalSettings,
        processes: dict[str, ProcessSettings],
        env: Mapping[str, str],
        *,
        platform_settings: tuple[EnvSettings, Mapping[str, EnvSettings]] | None = None,
        source_settings: Mapping[str, EnvSettings] | None = None,
        lock_settings: EnvSettings | None = None,
        scope: str = "",
    ) -> None:
        self.glob = glob
        self.processes = processes
        self.env = env
        self.platform_settings = platform_settings
        self.source_settings = dict(source_settings or {})
        self.lock_settings = lock_settings
        self.scope = scope  # the app's name on its platform, for the lock's default name
        self.warnings: list[str] = []

    @property
    def tick_timeout(self) -> float:
        if self.glob.tick_timeout is not None:
            return float(self.glob.tick_timeout)
        return max(1.0, min(30.0, self.glob.interval * 0.8))

    @property
    def lock_kind(self) -> str:
        """The lock backend ``AUTOSCALER_LOCK`` resolves to (``none`` included)."""
        kind = self.glob.lock
        if kind != "auto":
            return kind
        if self.glob.platform == "sim":
            return "none"
        if self.glob.redis_url:
            return "redis"
        if self.glob.database_url:
            return "postgres"
        return "none"


def read_env(path: str | Path = ".env") -> dict[str, str]:
    """The process environment merged over a ``.env`` file (read by pydantic-settings' dotenv
    source) in the working directory."""
    merged: dict[str, str] = {}
    if Path(path).is_file():
        dotenv = DotEnvSettingsSource(BaseSettings, env_file=path, case_sensitive=True)
        merged.update({k: v for k, v in dotenv.env_vars.items() if v is not None})
    merged.update(os.environ)
    return merged


def _default_catalog() -> Catalog:
    from autoscaler import registry

    return registry


def load(env: Mapping[str, str] | None = None, catalog: Catalog | None = None) -> Settings:
    """Validate the configuration; raise ``ConfigError`` listing every problem."""
    env = read_env() if env is None else env
    cat = _default_catalog() if catalog is None else catalog
    problems: dict[str, str] = {}
    glob: GlobalSettings | None = None
    try:
        glob = read(GlobalSettings, env)
    except ConfigError as exc:
        problems.update(exc.problems)
    tz_name = (env.get("AUTOSCALER_TIMEZONE") or "UTC").strip() or "UTC"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems["AUTOSCALER_TIMEZONE"] = f"{tz_name!r} is not a known time zone (Europe/Paris)"
        tz_name = "UTC"
    platform = glob.platform.lower() if glob else (env.get("AUTOSCALER_PLATFORM") or "sim")
    names = _process_names(glob, env, platform, problems)

    processes: dict[str, ProcessSettings] = {}
    sources: dict[str, EnvSettings] = {}
    for name in names:
        core, own, found = _load_process(name, env, platform, tz_name, cat)
        problems.update(found)
        if core is not None:
            processes[name] = core
        if own is not None:
            sources[name] = own

    settings = None
    if glob is not None:
        settings = _with_adapters(glob, processes, sources, env, cat=cat, problems=problems)
    else:  # still name a bad lock backend with the other problems
        lock = (env.get("AUTOSCALER_LOCK") or "auto").strip().lower()
        _lock_kind_problem(lock, cat, problems)
    unread = _unread_by_configured(env, names, settings, cat)
    if unread:  # only then is every adapter imported, to say whose variable each one is
        _unknown_vars(unread, names, processes, cat, problems)
    if problems or settings is None:
        raise ConfigError(problems)
    settings.warnings = _threshold_warnings(env, processes)
    return settings


def _process_names(
    glob: GlobalSettings | None, env: Mapping[str, str], platform: str, problems: dict[str, str]
) -> list[str]:
    if glob is not None and glob.processes is not None:
        names = glob.processes
    elif env.get("AUTOSCALER_PROCESSES") is None:
        names = ["web", "worker"] if platform == "sim" else ["web"]
    elif glob is None:
        # another global is invalid: read the list as written, so that its processes' settings
        # are checked, not reported as settings of unmanaged processes
        raw = env["AUTOSCALER_PROCESSES"].split(",")
        names = [n.strip().lower() for n in raw if _PROCESS_NAME.match(n.strip().lower())]
    else:
        return []
    seen: set[str] = set()
    for name in names:
        if not _PROCESS_NAME.match(name):
            problems["AUTOSCALER_PROCESSES"] = (
                f"{name!r} is not a process type (lowercase letters, digits, - and _)"
            )
        elif name in seen:
            problems["AUTOSCALER_PROCESSES"] = f"{name!r} is listed twice"
        seen.add(name)
    return list(dict.fromkeys(names))


def _source_of(name: str, env: Mapping[str, str], platform: str) -> str:
    """The process's source name; raises ``ConfigError`` when it must be given and is not."""
    var = process_prefix(name) + "SOURCE"
    raw = env.get(var)
    if raw is not None and not raw.strip():
        raise ConfigError({var: "is empty; unset it to use the default"})
    if raw:
        return raw.strip().lower()
    if platform == "sim":
        return "sim"
    if name == "web":
        return "request_queue_time"
    raise ConfigError({var: "is required for a process other than web"})


def _load_process(
    name: str, env: Mapping[str, str], platform: str, tz_name: str, cat: Catalog
) -> tuple[ProcessSettings | None, EnvSettings | None, dict[str, str]]:
    """One process's core settings and its source's own, and the problems found in them."""
    prefix = process_prefix(name)
    try:
        source = _source_of(name, env, platform)
        adapter = cat.source_adapter(source, prefix + "SOURCE")
    except ConfigError as exc:
        return None, None, exc.problems
    metric = adapter.metric
    if metric is None:  # the simulated app: web-like unless named as a worker
        metric = Metric.JOB_LATENCY if name.startswith("worker") else Metric.REQUEST_QUEUE_TIME
    fixed = {"name": name, "var_prefix": prefix, "metric": metric, "timezone": tz_name}
    core: ProcessSettings | None = None
    own: EnvSettings | None = None
    problems: dict[str, str] = {}
    try:
        core = read(ProcessSettings, env, prefix, **fixed, source=source)
    except ConfigError as exc:
        problems.update(exc.problems)
    try:
        own = read(adapter.settings, env, prefix)
    except ConfigError as exc:
        problems.update(exc.problems)
    return core, own, problems


def _with_adapters(
    glob: GlobalSettings,
    processes: dict[str, ProcessSettings],
    sources: dict[str, EnvSettings],
    env: Mapping[str, str],
    *,
    cat: Catalog,
    problems: dict[str, str],
) -> Settings:
    """The platform's and the lock's own settings read and checked; the settings assembled."""
    glob = glob.model_copy(update={"platform": glob.platform.lower(), "lock": glob.lock.lower()})
    settings = Settings(glob, processes, env, source_settings=sources)
    try:
        platform = cat.platform_adapter(glob.platform, "AUTOSCALER_PLATFORM")
        own = read(platform.settings, env)
        per = read_each(platform.process_settings, settings)
        if not problems:  # its cross-checks need the processes' settings
            platform.parse(settings, own, per)
        settings.platform_settings = (own, per)
        settings.scope = platform.scope(own, per)
    except ConfigError as exc:
        problems.update(exc.problems)
    kind = settings.lock_kind
    if not _lock_kind_problem(kind, cat, problems) and kind != "none":
        try:
            lock = cat.lock_adapter(kind, "AUTOSCALER_LOCK")
            settings.lock_settings = read(lock.settings, env)
            lock.parse(settings, settings.lock_settings, settings.scope)
        except ConfigError as exc:
            problems.update(exc.problems)
    return settings


def _lock_kind_problem(kind: str, cat: Catalog, problems: dict[str, str]) -> bool:
    locks = tuple(cat.lock_names())
    if kind in ("auto", "none", *locks):
        return False
    problems["AUTOSCALER_LOCK"] = f"{kind!r} is not one of auto, none, {', '.join(locks)}"
    return True


def _unread_by_configured(
    env: Mapping[str, str], names: list[str], settings: Settings | None, cat: Catalog
) -> list[str]:
    """The ``AUTOSCALER_*`` names that neither the core nor a configured adapter reads (the
    common case, none, needs no import of the adapters that are not configured)."""
    known = {v.name for v in variables(GlobalSettings)} | {v.name for v in cat.app_variables()}
    per_process: dict[str, set[str]] = {n: set(PROCESS_VARS) for n in names}
    if settings is not None:
        if settings.platform_settings is not None:
            own, per = settings.platform_settings
            known |= {v.name for v in variables(type(own))}
            for name, model in per.items():
                per_process[name] |= {v.name for v in variables(type(model), "")}
        if settings.lock_settings is not None:
            known |= {v.name for v in variables(type(settings.lock_settings))}
        for name, model in settings.source_settings.items():
            per_process[name] |= {v.name for v in variables(type(model), "")}
    unread = []
    for key in sorted(env):
        if not key.startswith("AUTOSCALER_") or key in known:
            continue
        if not any(key.removeprefix(process_prefix(n)) in per_process[n] for n in names):
            unread.append(key)
    return unread


def _unknown_vars(
    env: Iterable[str],
    names: list[str],
    processes: Mapping[str, ProcessSettings],
    cat: Catalog,
    problems: dict[str, str],
) -> None:
    """Every ``AUTOSCALER_*`` variable must be one something reads. A variable of a process not
    in ``AUTOSCALER_PROCESSES`` is an error that says to add it; so is one of another source.
    Variables of another platform are accepted (a config may carry two while moving)."""
    known_globals = {v.name: owner for owner, v in cat.global_variables()}
    suffix_owners: dict[str, list[str]] = {}
    for owner, v in cat.process_variables():
        suffix_owners.setdefault(v.name, []).append(owner)
    prefixes = sorted(((process_prefix(n), n) for n in names), key=lambda p: -len(p[0]))
    for key in sorted(env):
        if not key.startswith("AUTOSCALER_") or key in known_globals:
            continue
        for prefix, name in prefixes:
            if key.startswith(prefix):
                why = _process_var_problem(
                    key[len(prefix) :],
                    prefix=prefix,
                    name=name,
                    processes=processes,
                    suffix_owners=suffix_owners,
                )
                if why:
                    problems[key] = why
                break
        else:
            problems[key] = _stray_var_problem(key, names, known_globals, suffix_owners)


def _process_var_problem(
    suffix: str,
    *,
    prefix: str,
    name: str,
    processes: Mapping[str, ProcessSettings],
    suffix_owners: Mapping[str, list[str]],
) -> str | None:
    owners = suffix_owners.get(suffix)
    if owners is None:
        close = difflib.get_close_matches(suffix, sorted(suffix_owners), n=1)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        return f"is not a variable of any source or platform{hint}"
    p = processes.get(name)
    if p is None or "core" in owners:
        return None
    if f"source {p.source}" in owners or any(o.startswith("platform ") for o in owners):
        return None
    return f"is not read with {prefix}SOURCE={p.source} (it belongs to {', '.join(owners)})"


def _stray_var_problem(
    key: str,
    names: list[str],
    known_globals: Mapping[str, str],
    suffix_owners: Mapping[str, list[str]],
) -> str:
    for suffix in sorted(suffix_owners, key=len, reverse=True):
        if key.endswith("_" + suffix) and len(key) > len("AUTOSCALER_") + len(suffix) + 1:
            process = key[len("AUTOSCALER_") : -len(suffix) - 1].lower()
            return (
                f"is a setting of process {process!r}, which is not in AUTOSCALER_PROCESSES "
                f"({','.join(names) or 'empty'}): add it "
                f"(AUTOSCALER_PROCESSES={','.join([*names, process])}) or unset the variable"
            )
    close = difflib.get_close_matches(key, sorted(known_globals), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"is not a known variable{hint}"


#: a bare threshold above this many seconds is more likely meant in milliseconds
_IMPLAUSIBLE_S = {Metric.REQUEST_QUEUE_TIME: 10.0, Metric.JOB_LATENCY: 3600.0}
_BARE_NUMBER = re.compile(r"^\s*[0-9]+(\.[0-9]*)?\s*$")


def _threshold_warnings(
    env: Mapping[str, str], processes: Mapping[str, ProcessSettings]
) -> list[str]:
    """A bare threshold (seconds) that is implausible as seconds, e.g. ``200`` for web."""
    out: list[str] = []
    for p in processes.values():
        for suffix in ("UP_THRESHOLD", "DOWN_THRESHOLD"):
            raw = env.get(p.var_prefix + suffix)
            if raw is None or not _BARE_NUMBER.match(raw):
                continue
            seconds = float(raw)
            if seconds > _IMPLAUSIBLE_S[p.metric]:
                out.append(
                    f"{p.var_prefix}{suffix}={raw.strip()} is read as {seconds:g} seconds; "
                    f"if you meant {seconds:g} milliseconds write {raw.strip()}ms"
                )
    return out


def doc_rows(model: type[EnvSettings], prefix: str | None = None) -> list[Variable]:
    """The variables of a core model, for the generated docs."""
    skip = PROCESS_FIXED if model is ProcessSettings else ()
    return list(variables(model, prefix, skip=skip))
