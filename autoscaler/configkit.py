"""What every settings model is made of, the core's and each adapter's alike. Knows no adapter.

- Value types that check a config var and say what is wrong in the project's words, naming the
  value, the unit and the range (``Int``, ``Float``, ``Duration``, ``Choice``, ``Text``, ``Url``,
  ``Bool``, ``Csv``).
- ``read(model, env, prefix)``: one model read from config vars by pydantic-settings' environment
  source over an explicit mapping (the environment merged over ``.env``, or a test's dict), with
  the model's ``env_prefix`` (``HEROKU_``) or a per-process prefix (``AUTOSCALER_WEB_``). Errors
  come back as one ``ConfigError`` naming each variable.
- ``variables(model, prefix)``: each variable's name, default, allowed values and meaning, for
  the strict check of unknown names and for the generated table in ``docs/configuration.md``.
- The adapter records (``SourceAdapter``, ``PlatformAdapter``, ``LockAdapter``) an adapter module
  exports as ``ADAPTER``: its settings models and its typed ``build``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar, get_args

from pydantic import GetCoreSchemaHandler, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from autoscaler.durations import format_duration, parse_duration
from autoscaler.model import Metric
from autoscaler.ports import ConfigError, Lock, Platform, Source

# ---- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """A field's check of its raw value (before pydantic's own), and what it accepts in words
    (shown in errors and in the docs' table). Use as ``Annotated[int, Int(0, 10)]``."""

    func: Callable[[Any], Any]
    allowed: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_before_validator_function(self.func, handler(source))


_PLAIN_INT = re.compile(r"^-?[0-9]+$")
_PLAIN_FLOAT = re.compile(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")


def clean(value: Any) -> Any:
    """Strip ASCII blanks; refuse an empty value and invisible or non-ASCII space characters
    (a non-breaking space pasted from a web page must not pass in one place and fail in another).
    """
    if not isinstance(value, str):
        return value
    for char in value:
        if char in " \t":
            continue
        category = unicodedata.category(char)
        if category in ("Zs", "Zl", "Zp", "Cc", "Cf"):
            name = unicodedata.name(char, "a control character")
            raise ValueError(
                f"{value!r} contains an invisible character U+{ord(char):04X} ({name.lower()}), "
                "probably pasted: type the value again"
            )
    value = value.strip(" \t")
    if not value:
        raise ValueError("is empty; unset it to use the default")
    return value


def _range_words(lo: float | None, hi: float | None, fmt: Callable[[float], str]) -> str:
    if lo is not None and hi is not None:
        return f"from {fmt(lo)} to {fmt(hi)}"
    if lo is not None:
        return f"at least {fmt(lo)}"
    if hi is not None:
        return f"up to {fmt(hi)}"
    return ""


def Int(lo: int | None = None, hi: int | None = None, unit: str = "") -> Check:
    """A whole number written as plain digits (``1_0`` and ``1e3`` are refused)."""
    what = f"a whole number{f' of {unit}' if unit else ''}"
    allowed = f"{what} {_range_words(lo, hi, lambda v: f'{v:g}')}".strip()

    def check(value: Any) -> Any:
        value = clean(value)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{value!r} is not {allowed}")
        if isinstance(value, str):
            if not _PLAIN_INT.match(value):
                raise ValueError(f"{value!r} is not {allowed} (write plain digits, e.g. 10)")
            value = int(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{value} is out of range: {allowed}")
        return value

    return Check(check, allowed)


def Float(lo: float | None = None, hi: float | None = None, unit: str = "") -> Check:
    """A finite decimal number (``nan``, ``inf`` and ``1e3`` are refused)."""
    what = f"a number{f' ({unit})' if unit else ''}"
    allowed = f"{what} {_range_words(lo, hi, lambda v: f'{v:g}')}".strip()

    def check(value: Any) -> Any:
        value = clean(value)
        if isinstance(value, str):
            if not _PLAIN_FLOAT.match(value):
                raise ValueError(f"{value!r} is not {allowed}")
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not {allowed}")
        if not math.isfinite(value) or (lo is not None and value < lo):
            raise ValueError(f"{value:g} is out of range: {allowed}")
        if hi is not None and value > hi:
            raise ValueError(f"{value:g} is out of range: {allowed}")
        return float(value)

    return Check(check, allowed)


def Duration(lo: float | None = 0.0, hi: float | None = None, *, above: bool = False) -> Check:
    """Seconds, written ``250ms``, ``30s``, ``10m``, ``1h`` or a bare number of seconds.

    ``above``: ``lo`` itself is refused (a duration that must be greater than zero).
    """
    bounds = _range_words(None if above or not lo else lo, hi, format_duration)
    if above:
        bounds = f"above {format_duration(lo) if lo else '0s'}" + (
            f" up to {format_duration(hi)}" if hi else ""
        )
    allowed = f"a duration {bounds} (250ms, 30s, 10m, 1h; a bare number is seconds)"

    def check(value: Any) -> Any:
        value = clean(value)
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not {allowed}")
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value), "s")
            except ValueError:
                raise ValueError(f"{value!r} is not {allowed}") from None
        low_bad = lo is not None and (seconds <= lo if above else seconds < lo)
        if not math.isfinite(seconds) or low_bad or (hi is not None and seconds > hi):
            raise ValueError(f"{value!r} is out of range: {allowed}")
        return seconds

    return Check(check, allowed)


def Choice(*values: str) -> Check:
    """One word of a fixed list, any case."""
    allowed = "one of " + ", ".join(values)

    def check(value: Any) -> Any:
        value = clean(value)
        text = str(value).lower()
        if text not in values:
            raise ValueError(f"{value!r} is not {allowed}")
        return text

    return Check(check, allowed)


def Matches(pattern: str, what: str, allowed: str) -> Check:
    """Text that matches ``pattern`` (a name, an id): ``what`` names it in the error."""
    regex = re.compile(pattern)

    def check(value: Any) -> Any:
        value = clean(value)
        if not regex.match(str(value)):
            raise ValueError(f"{value!r} is not {what} ({allowed})")
        return value

    return Check(check, allowed)


def _bool(value: Any) -> Any:
    value = clean(value)
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true or false)")


def _url(value: Any) -> Any:
    value = clean(value)
    if not re.match(r"^[a-z][a-z0-9+.-]*://", str(value), re.IGNORECASE):
        raise ValueError(f"{value!r} is not a URL (it must start with a scheme such as https://)")
    return value


def _csv(value: Any) -> Any:
    value = clean(value)
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        if any(not item for item in items):
            raise ValueError(f"{value!r} has an empty item")
        return items
    return value


Text = Annotated[str, Check(clean, "text")]
Url = Annotated[str, Check(_url, "a URL")]
Bool = Annotated[bool, Check(_bool, "true or false")]
Csv = Annotated[list[str], NoDecode, Check(_csv, "a comma-separated list")]


# ---- models and reading them --------------------------------------------------------------------


class EnvSettings(BaseSettings):
    """Base of every settings model. Fields are variables: ``env_prefix`` + the field's name in
    capitals, or the field's ``validation_alias``; ``description`` is the docs' meaning line and
    ``json_schema_extra={"default": ...}`` the docs' default when the field's own says too little.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over an explicit mapping (upper-case names only:
    a variable's name is matched exactly, not in any case)."""

    def __init__(self, cls: type[BaseSettings], env: Mapping[str, str], prefix: str) -> None:
        self._mapping = {k: v for k, v in env.items() if k == k.upper()}
        super().__init__(cls, case_sensitive=False, env_prefix=prefix)

    def _load_env_vars(self) -> dict[str, str | None]:
        return {k.lower(): v for k, v in self._mapping.items()}


M = TypeVar("M", bound=EnvSettings)


def _prefix(model: type[EnvSettings], prefix: str | None) -> str:
    return prefix if prefix is not None else str(model.model_config.get("env_prefix") or "")


def var_name(model: type[EnvSettings], field: str, prefix: str | None = None) -> str:
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, str):
        return alias
    return _prefix(model, prefix) + field.upper()


def read(model: type[M], env: Mapping[str, str], prefix: str | None = None, **extra: Any) -> M:
    """Read ``model`` from ``env``; ``extra`` are values that do not come from a variable.

    Raises ``ConfigError`` naming each offending variable, in the project's words.
    """
    values = _MappingSource(model, env, _prefix(model, prefix))()
    try:
        return model.model_validate({**values, **extra})
    except ValidationError as exc:
        raise ConfigError(problems_of(exc, model, prefix)) from None


def process_prefix(process: str) -> str:
    """``AUTOSCALER_<P>_``: the process type upper-cased, ``-`` as ``_``."""
    return "AUTOSCALER_" + process.upper().replace("-", "_") + "_"


def read_each(model: type[M], config: DaemonConfig) -> dict[str, M]:
    """``model`` read once per managed process; one ``ConfigError`` for all of them."""
    out: dict[str, M] = {}
    problems: dict[str, str] = {}
    for name in config.processes:
        try:
            out[name] = read(model, config.env, process_prefix(name))
        except ConfigError as exc:
            problems.update(exc.problems)
    if problems:
        raise ConfigError(problems)
    return out


class Problems(ValueError):
    """Raised by a model's cross-field validator: variable -> why (several at once)."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = dict(problems)


def problems_of(
    exc: ValidationError, model: type[EnvSettings], prefix: str | None = None
) -> dict[str, str]:
    problems: dict[str, str] = {}
    for err in exc.errors():
        ctx_error = err.get("ctx", {}).get("error")
        if isinstance(ctx_error, Problems):
            problems.update(ctx_error.problems)
            continue
        field = str(err["loc"][0]) if err["loc"] else ""
        var = var_name(model, field, prefix) if field in model.model_fields else field
        if err["type"] == "missing":
            info = model.model_fields.get(field)
            msg = f"is required: {info.description}" if info and info.description else "is required"
        else:
            msg = err["msg"]
            for lead in ("Value error, ", "Assertion failed, "):
                msg = msg.removeprefix(lead)
        problems.setdefault(var, msg)
    return problems


# ---- documentation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str
    allowed: str
    meaning: str


def _checks(annotation: Any) -> Iterator[Check]:
    for item in getattr(annotation, "__metadata__", ()):
        if isinstance(item, Check):
            yield item
    for arg in get_args(annotation):
        yield from _checks(arg)


def _allowed(info: FieldInfo) -> str:
    for item in [*info.metadata, *_checks(info.annotation)]:
        if isinstance(item, Check):
            return item.allowed
    return ""


def _default(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "default" in extra:
        return str(extra["default"])
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and "duration" in _allowed(info):
        return f"`{format_duration(value)}`" if value else "`0s`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def variables(
    model: type[EnvSettings], prefix: str | None = None, *, skip: tuple[str, ...] = ()
) -> Iterator[Variable]:
    """The variables ``model`` reads, in field order (``skip``: fields set by the code)."""
    for field, info in model.model_fields.items():
        if field in skip:
            continue
        yield Variable(
            var_name(model, field, prefix), _default(info), _allowed(info), info.description or ""
        )


# ---- what an adapter module exports -------------------------------------------------------------


class ProcessConfig(Protocol):
    """What an adapter may read of a managed process's core settings."""

    @property
    def name(self) -> str: ...
    @property
    def var_prefix(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def metric(self) -> Metric: ...
    @property
    def min(self) -> int: ...
    @property
    def max(self) -> int: ...
    @property
    def window(self) -> float: ...
    @property
    def aggregate(self) -> str | None: ...


class SharedConfig(Protocol):
    """The core's global settings an adapter may read (shared connections, the tick)."""

    @property
    def platform(self) -> str: ...
    @property
    def interval(self) -> float: ...
    @property
    def redis_url(self) -> str | None: ...
    @property
    def redis_ssl_cert_reqs(self) -> str | None: ...
    @property
    def database_url(self) -> str | None: ...
    @property
    def sim_speed(self) -> float: ...
    @property
    def sim_seed(self) -> int | None: ...


class DaemonConfig(Protocol):
    """The core settings as adapters see them; ``env`` is the merged environment."""

    @property
    def glob(self) -> SharedConfig: ...
    @property
    def processes(self) -> Mapping[str, ProcessConfig]: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def tick_timeout(self) -> float: ...
    @property
    def scope(self) -> str:
        """The app's name on its platform (the lock's default name is made of it)."""
        ...


S = TypeVar("S", bound=EnvSettings)
P = TypeVar("P", bound=EnvSettings)


class NoSettings(EnvSettings):
    """For an adapter that reads no variable of its own."""


@dataclass(frozen=True)
class SourceAdapter(Generic[P]):
    """A source: ``settings`` is read per process (``AUTOSCALER_<P>_``); ``metric`` is what it
    measures (``None``: by the process's name, for the simulated app)."""

    settings: type[P]
    build: Callable[[DaemonConfig, ProcessConfig, P], Source]
    metric: Metric | None


@dataclass(frozen=True)
class PlatformAdapter(Generic[S, P]):
    """A platform: ``settings`` is read once, ``process_settings`` per process. ``parse`` is its
    pure check across them (run by ``load``, so that ``check`` and ``run`` refuse the same
    things); ``scope`` names the app for the lock's default name
    (``autoscaler:<platform>:<scope>``)."""

    settings: type[S]
    process_settings: type[P]
    parse: Callable[[DaemonConfig, S, Mapping[str, P]], object]
    build: Callable[[DaemonConfig, S, Mapping[str, P]], Platform]
    scope: Callable[[S, Mapping[str, P]], str]


T = TypeVar("T")


def global_only(
    f: Callable[[DaemonConfig, S], T],
) -> Callable[[DaemonConfig, S, Mapping[str, NoSettings]], T]:
    """A platform's ``parse`` or ``build`` that reads no per-process variable of its own."""
    return lambda config, own, per_process: f(config, own)


@dataclass(frozen=True)
class LockAdapter(Generic[S]):
    """A lock backend; ``parse`` is its pure check (run by ``load``); both get the app's scope
    for the default lock name (see ``PlatformAdapter.scope``)."""

    settings: type[S]
    parse: Callable[[DaemonConfig, S, str], object]
    build: Callable[[DaemonConfig, S, str], Lock]
