"""Configuration: config vars (and a ``.env`` file) to validated settings.

``load()`` returns a ``Settings`` or raises ``ConfigError`` naming every offending variable at
once. Global variables are one pydantic-settings model; each managed process gets a
``ProcessSettings`` read from ``AUTOSCALER_<P>_*``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from autoscaler.durations import parse_duration
from autoscaler.model import Metric
from autoscaler.ports import ConfigError
from autoscaler.schedule import Schedule, parse_schedule

PLATFORMS = ("sim", "heroku", "render", "fly", "railway")
JOB_SOURCES = (
    "rq",
    "celery",
    "dramatiq",
    "arq",
    "sidekiq",
    "procrastinate",
    "good_job",
    "solid_queue",
    "sql",
    "http",
)
SOURCES = ("request_queue_time", "sim", *JOB_SOURCES)
AGGREGATES = ("avg", "p50", "p90", "p95", "p99", "max")
_PROCESS_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _nonempty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("is empty; unset it to use the default")
    return value.strip() if isinstance(value, str) else value


def _duration(bare_unit: str) -> Any:
    def parse(value: Any) -> Any:
        value = _nonempty(value)
        if isinstance(value, int | float):
            return float(value)
        return parse_duration(str(value), bare_unit)

    return BeforeValidator(parse)


def _bool(value: Any) -> Any:
    value = _nonempty(value)
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true or false)")


def _lower(value: Any) -> Any:
    value = _nonempty(value)
    return value.lower() if isinstance(value, str) else value


def _positive(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _url(value: str) -> str:
    if not re.match(r"^[a-z][a-z0-9+.-]*://", value, re.IGNORECASE):
        raise ValueError("is not a URL (it must start with a scheme such as https://)")
    return value


Seconds = Annotated[float, _duration("s"), Field(ge=0)]
PositiveSeconds = Annotated[float, _duration("s"), AfterValidator(_positive)]
Str = Annotated[str, BeforeValidator(_nonempty)]
Url = Annotated[str, BeforeValidator(_nonempty), AfterValidator(_url)]
Bool = Annotated[bool, BeforeValidator(_bool)]


def _csv(value: Any) -> Any:
    value = _nonempty(value)
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        if any(not item for item in items):
            raise ValueError(f"{value!r} has an empty item")
        return items
    return value


class _EnvSource(PydanticBaseSettingsSource):
    """Feeds the model from an explicit mapping, so that tests and the CLI share one path."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, str) and alias in self.env:
                out[alias] = self.env[alias]
            elif name in self.env:
                out[name] = self.env[name]
        return out


class GlobalSettings(BaseSettings):
    """The global config vars (SPEC "Configuration")."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    platform: Annotated[
        Literal["sim", "heroku", "render", "fly", "railway"], BeforeValidator(_lower)
    ] = Field("sim", validation_alias="AUTOSCALER_PLATFORM")
    processes: Annotated[list[str], BeforeValidator(_csv)] | None = Field(
        None, validation_alias="AUTOSCALER_PROCESSES"
    )
    dry_run: Bool = Field(False, validation_alias="AUTOSCALER_DRY_RUN")
    interval: Annotated[float, _duration("s"), Field(ge=1.0, le=3600.0)] = Field(
        5.0, validation_alias="AUTOSCALER_INTERVAL"
    )
    tick_timeout: PositiveSeconds | None = Field(None, validation_alias="AUTOSCALER_TICK_TIMEOUT")
    log_format: Annotated[Literal["logfmt", "json", "console"], BeforeValidator(_lower)] = Field(
        "logfmt", validation_alias="AUTOSCALER_LOG_FORMAT"
    )
    log_level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
    ] = Field("info", validation_alias="AUTOSCALER_LOG_LEVEL")
    metrics_port: Annotated[int, BeforeValidator(_nonempty), Field(ge=1, le=65535)] | None = Field(
        None, validation_alias="AUTOSCALER_METRICS_PORT"
    )
    metrics_host: Str = Field("127.0.0.1", validation_alias="AUTOSCALER_METRICS_HOST")
    lock: Annotated[Literal["auto", "redis", "postgres", "none"], BeforeValidator(_lower)] = Field(
        "auto", validation_alias="AUTOSCALER_LOCK"
    )
    notify_url: Url | None = Field(None, validation_alias="AUTOSCALER_NOTIFY_URL")
    timezone: Str = Field("UTC", validation_alias="AUTOSCALER_TIMEZONE")
    sim_speed: Annotated[float, BeforeValidator(_nonempty), Field(gt=0, le=10_000)] = Field(
        60.0, validation_alias="AUTOSCALER_SIM_SPEED"
    )
    sim_seed: Annotated[int, BeforeValidator(_nonempty)] | None = Field(
        None, validation_alias="AUTOSCALER_SIM_SEED"
    )
    redis_url: Url | None = Field(None, validation_alias="REDIS_URL")
    database_url: Url | None = Field(None, validation_alias="DATABASE_URL")

    heroku_api_token: Str | None = Field(None, validation_alias="HEROKU_API_TOKEN")
    heroku_app_name: Str | None = Field(None, validation_alias="HEROKU_APP_NAME")
    heroku_api_url: Url = Field("https://api.heroku.com", validation_alias="HEROKU_API_URL")
    render_api_key: Str | None = Field(None, validation_alias="RENDER_API_KEY")
    render_api_url: Url = Field("https://api.render.com/v1", validation_alias="RENDER_API_URL")
    fly_api_token: Str | None = Field(None, validation_alias="FLY_API_TOKEN")
    fly_app_name: Str | None = Field(None, validation_alias="FLY_APP_NAME")
    fly_api_url: Url = Field("https://api.machines.dev", validation_alias="FLY_API_URL")
    railway_api_token: Str | None = Field(None, validation_alias="RAILWAY_API_TOKEN")
    railway_environment_id: Str | None = Field(None, validation_alias="RAILWAY_ENVIRONMENT_ID")
    railway_api_url: Url = Field(
        "https://backboard.railway.com/graphql/v2", validation_alias="RAILWAY_API_URL"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what ``load()`` passes in: it has already merged the environment and .env.
        return (init_settings,)


#: per-process variable suffixes -> ProcessSettings field names
PROCESS_VARS = {
    "MIN": "min",
    "MAX": "max",
    "SOURCE": "source",
    "QUEUES": "queues",
    "UP_THRESHOLD": "up_threshold",
    "DOWN_THRESHOLD": "down_threshold",
    "AGGREGATE": "aggregate",
    "WINDOW": "window",
    "UP_STEP": "up_step",
    "DOWN_STEP": "down_step",
    "UP_SENSITIVITY": "up_sensitivity",
    "UP_COOLDOWN": "up_cooldown",
    "DOWN_DELAY": "down_delay",
    "HEADROOM": "headroom",
    "SCHEDULE": "schedule",
    "MIN_SAMPLES": "min_samples",
    "PROVISION_TIMEOUT": "provision_timeout",
    "STALE_AFTER": "stale_after",
    "SQL": "sql",
    "URL": "url",
    "RENDER_SERVICE_ID": "render_service_id",
    "RAILWAY_SERVICE_ID": "railway_service_id",
}
#: suffixes that adapters read themselves from ``Settings.env`` (so they are not typos)
ADAPTER_PROCESS_VARS: set[str] = {"QUEUE_DISCOVERY_LIMIT", "SQL_TIMEOUT", "HTTP_TIMEOUT"}
ADAPTER_PROCESS_VARS |= {"REDIS_TIMEOUT", "KEY_PREFIX"}  # Redis job sources
ADAPTER_PROCESS_VARS |= {"DATABASE_URL", "HTTP_VALUE", "HTTP_TOKEN"}  # SQL and HTTP sources


def _step(value: Any) -> Any:
    value = _nonempty(value)
    if isinstance(value, str) and value.lower() == "auto":
        return None
    return value


_auto = _step  # "auto" (any case) means None: the policy decides


class ProcessSettings(BaseModel):
    """One managed process's settings. Durations are seconds, thresholds milliseconds."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    var_prefix: str
    min: Annotated[int, BeforeValidator(_nonempty), Field(ge=0, le=10_000)] = 1
    max: Annotated[int, BeforeValidator(_nonempty), Field(ge=0, le=10_000)] = 10
    source: Annotated[str, BeforeValidator(_lower)] = "request_queue_time"
    queues: Annotated[list[str], BeforeValidator(_csv)] | None = None
    up_threshold: Annotated[float, _duration("s"), AfterValidator(_positive)] | None = None
    down_threshold: Annotated[float, _duration("s"), Field(ge=0)] | None = None
    aggregate: (
        Annotated[Literal["avg", "p50", "p90", "p95", "p99", "max"], BeforeValidator(_lower)] | None
    ) = None
    window: Annotated[float, _duration("s"), Field(ge=1.0, le=3600.0)] = 30.0
    up_step: Annotated[int, BeforeValidator(_step), Field(ge=1, le=1000)] | None = None
    down_step: Annotated[int, BeforeValidator(_nonempty), Field(ge=1, le=1000)] = 1
    up_sensitivity: Seconds = 0.0
    up_cooldown: Seconds = 60.0
    down_delay: Annotated[Seconds | None, BeforeValidator(_auto)] = None  # None: auto
    headroom: Annotated[float, BeforeValidator(_nonempty), Field(ge=0, le=10)] = 1.8
    schedule: Str | None = None
    min_samples: Annotated[int, BeforeValidator(_nonempty), Field(ge=0, le=100_000)] = 5
    provision_timeout: PositiveSeconds = 600.0
    stale_after: PositiveSeconds | None = None
    sql: Str | None = None
    url: Url | None = None
    render_service_id: Str | None = None
    railway_service_id: Str | None = None
    timezone: str = "UTC"

    @property
    def metric(self) -> Metric:
        if self.source in ("request_queue_time",) or (
            self.source == "sim" and not self.name.startswith("worker")
        ):
            return Metric.REQUEST_QUEUE_TIME
        return Metric.JOB_LATENCY

    @property
    def up_threshold_ms(self) -> float:
        assert self.up_threshold is not None
        return self.up_threshold * 1000.0

    @property
    def down_threshold_ms(self) -> float:
        assert self.down_threshold is not None
        return self.down_threshold * 1000.0

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
        if self.source not in SOURCES:
            problems[f"{p}SOURCE"] = f"unknown source {self.source!r} (one of {', '.join(SOURCES)})"
        if self.min > self.max:
            problems[f"{p}MIN"] = f"MIN={self.min} is above {p}MAX={self.max}"
        if self.max == 0:
            problems[f"{p}MAX"] = "MAX must be at least 1"
        assert self.down_threshold is not None and self.up_threshold is not None
        if self.down_threshold >= self.up_threshold:
            problems[f"{p}DOWN_THRESHOLD"] = (
                f"{self.down_threshold * 1000:g}ms must be below "
                f"{p}UP_THRESHOLD {self.up_threshold * 1000:g}ms"
            )
        if self.source == "sql" and self.sql is None:
            problems[f"{p}SQL"] = "is required with SOURCE=sql"
        if self.source == "http" and self.url is None:
            problems[f"{p}URL"] = "is required with SOURCE=http"
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
            raise _Problems(problems)
        return self


class _Problems(ValueError):
    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


class Settings:
    """Everything the daemon was configured with."""

    def __init__(
        self, glob: GlobalSettings, processes: dict[str, ProcessSettings], env: Mapping[str, str]
    ) -> None:
        self.glob = glob
        self.processes = processes
        self.env = env  # the raw merged environment, for adapters' own variables
        self.warnings: list[str] = []

    @property
    def tick_timeout(self) -> float:
        if self.glob.tick_timeout is not None:
            return self.glob.tick_timeout
        return max(1.0, min(30.0, self.glob.interval * 0.8))


def process_prefix(process: str) -> str:
    return "AUTOSCALER_" + process.upper().replace("-", "_") + "_"


def _errors_of(exc: ValidationError, field_to_var: Mapping[str, str]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for err in exc.errors():
        ctx_error = err.get("ctx", {}).get("error")
        if isinstance(ctx_error, _Problems):
            problems.update(ctx_error.problems)
            continue
        loc = str(err["loc"][0]) if err["loc"] else ""
        var = field_to_var.get(loc, loc)
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        given = err.get("input")
        if isinstance(given, str) and "empty" not in msg and repr(given) not in msg:
            msg = f"{given!r}: {msg}"
        problems.setdefault(var, msg)
    return problems


def read_env(path: str | Path = ".env") -> dict[str, str]:
    """The process environment merged over a ``.env`` file in the working directory."""
    merged: dict[str, str] = {}
    if Path(path).is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ)
    return merged


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Validate the configuration; raise ``ConfigError`` listing every problem."""
    if env is None:
        env = read_env()
    problems: dict[str, str] = {}
    glob: GlobalSettings | None = None
    try:
        glob = GlobalSettings.model_validate({k: v for k, v in env.items() if k in _GLOBAL_VARS})
    except ValidationError as exc:
        problems.update(_errors_of(exc, {}))
    tz_name = env.get("AUTOSCALER_TIMEZONE", "UTC").strip() or "UTC"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems["AUTOSCALER_TIMEZONE"] = f"{tz_name!r} is not a known time zone (Europe/Paris)"
        tz_name = "UTC"

    platform = (env.get("AUTOSCALER_PLATFORM") or "sim").strip().lower()
    raw_processes = env.get("AUTOSCALER_PROCESSES")
    if glob is not None and glob.processes is not None:
        names = glob.processes
    elif raw_processes is None:
        names = ["web", "worker"] if platform == "sim" else ["web"]
    else:
        names = []
    seen: set[str] = set()
    for name in names:
        if not _PROCESS_NAME.match(name):
            problems["AUTOSCALER_PROCESSES"] = (
                f"{name!r} is not a process type (lowercase letters, digits, - and _)"
            )
        elif name in seen:
            problems["AUTOSCALER_PROCESSES"] = f"{name!r} is listed twice"
        seen.add(name)

    processes: dict[str, ProcessSettings] = {}
    for name in names:
        prefix = process_prefix(name)
        values: dict[str, Any] = {"name": name, "var_prefix": prefix, "timezone": tz_name}
        for suffix, field in PROCESS_VARS.items():
            if prefix + suffix in env:
                values[field] = env[prefix + suffix]
        if "source" not in values:
            if platform == "sim":
                values["source"] = "sim"
            elif name != "web":
                problems[prefix + "SOURCE"] = (
                    "is required for a process other than web "
                    f"(one of {', '.join(s for s in SOURCES if s != 'sim')})"
                )
                continue
        field_to_var = {field: prefix + suffix for suffix, field in PROCESS_VARS.items()}
        try:
            processes[name] = ProcessSettings.model_validate(values)
        except ValidationError as exc:
            problems.update(_errors_of(exc, field_to_var))
        except _Problems as exc:
            problems.update(exc.problems)

    warnings = _unknown_vars(env, names, problems)
    if problems or glob is None:
        raise ConfigError(problems)
    settings = Settings(glob, processes, env)
    settings.warnings = warnings
    return settings


_GLOBAL_VARS = {str(info.validation_alias) for info in GlobalSettings.model_fields.values()} | {
    "AUTOSCALER_MAX_REQUEST_BYTES",  # read by the web middleware in the app
    "AUTOSCALER_FLUSH_INTERVAL",
    "AUTOSCALER_PROCESS",
    "AUTOSCALER_FLY_CLONE",  # read by the fly platform adapter
    *("AUTOSCALER_LOCK_" + v for v in ("TTL", "NAME", "URL", "SCHEMA")),  # adapters/locks
    "AUTOSCALER_ALERT_AFTER",  # autoscaler/alerts.py
    # autoscaler/history.py, autoscaler/dashboard
    *(
        "AUTOSCALER_" + v
        for v in ("HISTORY", "DASHBOARD_TOKEN", "DASHBOARD_PORT", "DASHBOARD_HOST")
    ),
}


def _unknown_vars(env: Mapping[str, str], names: list[str], problems: dict[str, str]) -> list[str]:
    """Typos in a managed process's variables are errors; other unknown names are warnings."""
    warnings: list[str] = []
    known_suffixes = set(PROCESS_VARS) | ADAPTER_PROCESS_VARS
    prefixes = {process_prefix(n): n for n in names}
    for key in env:
        if not key.startswith("AUTOSCALER_") or key in _GLOBAL_VARS:
            continue
        for prefix in prefixes:
            if key.startswith(prefix):
                suffix = key[len(prefix) :]
                if suffix not in known_suffixes:
                    close = difflib.get_close_matches(suffix, sorted(known_suffixes), n=1)
                    hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
                    problems[key] = f"unknown variable{hint}"
                break
        else:
            # a variable of a process that is not managed (yet) is fine; anything else is noted
            if not any(key.endswith("_" + s) for s in known_suffixes):
                warnings.append(f"{key} is not a known variable and is ignored")
    return warnings
