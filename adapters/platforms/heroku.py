"""Heroku Platform API v3: read the formation, set absolute quantities with one batch PATCH.

Calls: ``GET /apps/{app}/formation`` (the whole formation in one call) and
``PATCH /apps/{app}/formation`` with ``{"updates": [{"type", "quantity"}]}``. Every call sends
the v3 ``Accept`` header and a Bearer token.

Which dynos serve: ``GET /apps/{app}/dynos`` (paged with ``Range``/``Next-Range``), the dynos
whose ``state`` is ``up`` counted per process type, is each formation's ``ready``: the policy
times its upscales with it (the learned boot behind ``UP_COOLDOWN=auto``). The list is read
on every ``read`` while a process type has fewer dynos up than its quantity (or its quantity
changed since the list was read), else at most once every ``DYNO_MAX_AGE`` seconds; when the
budget has no room for it, or the list cannot be read, ``ready`` is unknown (``None``), never
guessed.

Rate limit: the account has a pool of 4,500 calls refilled at 75 a minute, shared with every
other client of the account (the CLI, the dashboard, other tools). This adapter keeps its own
pace well below it (``CALLS_PER_HOUR``) whatever the interval: when its budget is short, or the
account's ``RateLimit-Remaining`` is low, ``read`` answers from the last formation it read (if
younger than ``MAX_CACHED_AGE``) instead of calling; writes, and the re-read just before them,
may use a reserve that reads leave untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from autoscaler import configkit
from autoscaler.clock import Clock, SystemClock
from autoscaler.configkit import DaemonConfig, EnvSettings, NoSettings, PlatformAdapter, Text, Url
from autoscaler.model import Formation
from autoscaler.platforms._http import (
    CallBudget,
    Http,
    bearer_headers,
    error_message,
    iso_seconds,
)
from autoscaler.ports import ConfigError, Conflict, PlatformError, Rejected
from autoscaler.redact import redact, register_secret

ACCEPT = "application/vnd.heroku+json; version=3"
CALLS_PER_HOUR = 1200  # our pace: about a quarter of the account's 4,500
BURST = 40  # at most BURST + CALLS_PER_HOUR calls in any hour
WRITE_RESERVE = 8  # tokens that reads leave for writes
LOW_REMAINING = 450  # account pool below 10%: read from the cache when it is fresh enough
MAX_CACHED_AGE = 60.0  # seconds a formation read may be reused when pacing
DYNO_MAX_AGE = 60.0  # seconds a dyno list with every dyno up stands for an unchanged formation
DYNO_PAGES = 5  # pages of the dyno list read at most (200 dynos a page)
_APP = re.compile(r"^([a-z][a-z0-9-]{1,28}[a-z0-9]|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$")
#: 422 messages that mean "not now" rather than "never" (release phase, preboot)
_RETRYABLE_422 = re.compile(
    r"preboot|release phase|release is (still )?(running|in progress)", re.I
)


@dataclass(frozen=True, slots=True)
class HerokuConfig:
    token: str
    app: str
    api_url: str


class HerokuSettings(EnvSettings):
    """The Heroku platform's variables."""

    model_config = SettingsConfigDict(env_prefix="HEROKU_")

    api_token: Text = Field(description="a long-lived API token (`heroku authorizations:create`)")
    app_name: Text = Field(description="the app to scale (its name or id)")
    api_url: Url = Field(
        "https://api.heroku.com", description="the Platform API (tests and staging point elsewhere)"
    )


def parse(
    config: DaemonConfig,
    own: HerokuSettings | None = None,
) -> HerokuConfig:
    """Heroku's settings for the adapter: the app name must be a Heroku app's name or id."""
    own = own or configkit.read(HerokuSettings, config.env)
    if not _APP.match(own.app_name):
        raise ConfigError({"HEROKU_APP_NAME": f"{own.app_name!r} is not a Heroku app name or id"})
    return HerokuConfig(own.api_token, own.app_name, own.api_url)


def _entries(body: Any, what: str, field: str, kind: type) -> list[tuple[str, Any, dict[str, Any]]]:
    """The ``(type, field, entry)`` of each entry of a Heroku list answer (formations, dynos);
    ``PlatformError`` for anything else."""
    if not isinstance(body, list):
        raise PlatformError(f"heroku: expected a {what} list, got {type(body).__name__}")
    out = []
    for item in body:
        name = item.get("type") if isinstance(item, dict) else None
        value = item.get(field) if isinstance(item, dict) else None
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, kind):
            raise PlatformError(redact(f"heroku: unreadable {what} entry {item!r:.200}"))
        out.append((name, value, item))
    return out


def parse_formation(body: Any) -> dict[str, Formation]:
    """A formation list (``GET`` or batch ``PATCH`` answer) by process type."""
    return {
        name: Formation(quantity=quantity, updated_at=iso_seconds(item.get("updated_at")))
        for name, quantity, item in _entries(body, "formation", "quantity", int)
    }


def parse_dynos(body: Any) -> dict[str, int]:
    """A dyno list: per process type, how many dynos are ``up`` (``starting``, ``crashed``,
    ``down`` and ``idle`` ones do not serve)."""
    up: dict[str, int] = {}
    for name, state, _ in _entries(body, "dyno", "state", str):
        up[name] = up.get(name, 0) + (state == "up")
    return up


def rejection(response: httpx.Response, what: str) -> Rejected:
    """A 422 as ``Rejected``: retryable while a release phase or preboot runs, else not."""
    message = error_message(response)
    retryable = bool(_RETRYABLE_422.search(message))
    later = "will retry on a later tick" if retryable else "not retried"
    return Rejected(redact(f"heroku: {what} refused: {message} ({later})"), retryable=retryable)


class Heroku:
    """The ``Platform`` for one Heroku app."""

    name = "heroku"

    def __init__(
        self,
        config: HerokuConfig,
        *,
        clock: Clock | None = None,
        timeout: float = 10.0,
        calls_per_hour: float = CALLS_PER_HOUR,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        register_secret(config.token)
        self.config = config
        self.clock = clock or SystemClock()
        self.remaining: int | None = None  # the account's RateLimit-Remaining, last seen
        self.budget = CallBudget(
            "heroku", calls_per_hour, 3600.0, burst=BURST, reserve=WRITE_RESERVE, clock=self.clock
        )
        self.http = Http(
            "heroku",
            config.api_url,
            bearer_headers(config.token, ACCEPT),
            budget=self.budget,
            timeout=timeout,
            clock=self.clock,
            on_response=self._observe,
            transport=transport,
        )
        self._path = f"/apps/{config.app}/formation"
        self._dynos_path = f"/apps/{config.app}/dynos"
        self._cache: dict[str, Formation] = {}
        self._cached_at: float | None = None
        #: the last dyno list read: dynos up per type, the quantities it was read against, when
        self._up: dict[str, int] = {}
        self._up_for: dict[str, int] = {}
        self._up_at: float | None = None

    def _observe(self, response: httpx.Response) -> None:
        value = response.headers.get("ratelimit-remaining", "")
        if value.isdigit():
            self.remaining = int(value)
            if self.remaining == 0:  # the pool refills at 75 a minute: let it breathe
                self.budget.block(10.0)

    def _fetch(self, *, priority: bool = False) -> dict[str, Formation]:
        response = self.http.request("GET", self._path, priority=priority)
        if response.status_code != 200:
            raise self._error(response, "reading the formation")
        self._remember(parse_formation(response.json()))
        return self._cache

    def _remember(self, formation: dict[str, Formation]) -> None:
        self._cache = formation
        self._cached_at = self.clock.now().mono

    def _cache_usable(self) -> bool:
        if self._cached_at is None:
            return False
        fresh = self.clock.now().mono - self._cached_at < MAX_CACHED_AGE
        low = self.remaining is not None and self.remaining < LOW_REMAINING
        return fresh and (low or self.budget.wait() > 0)

    def _error(self, response: httpx.Response, what: str) -> PlatformError:
        status, message = response.status_code, error_message(response)
        if status == 401:
            text = f"heroku: {what}: 401 the token was refused ({message}); check HEROKU_API_TOKEN"
        elif status == 403:
            text = f"heroku: {what}: 403 the token may not access app {self.config.app} ({message})"
        elif status == 404:
            text = f"heroku: {what}: 404 {message} (app {self.config.app})"
        else:
            text = f"heroku: {what}: {status} {message}"
        return PlatformError(redact(text))

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        formation = self._cache if self._cache_usable() else self._fetch()
        selected = self._select(formation, processes)
        up = self._dynos_up(selected)
        if up is None:
            return selected
        return {p: replace(f, ready=min(up.get(p, 0), f.quantity)) for p, f in selected.items()}

    def _dynos_up(self, formation: Mapping[str, Formation]) -> dict[str, int] | None:
        """Dynos up per type: the last list while every dyno was up in it, the quantities have
        not changed and it is younger than ``DYNO_MAX_AGE``; else a new list, or ``None`` when
        it cannot be read now."""
        now = self.clock.now().mono
        settled = all(
            self._up_for.get(p) == f.quantity and self._up.get(p, 0) >= f.quantity
            for p, f in formation.items()
        )
        if settled and self._up_at is not None and now - self._up_at < DYNO_MAX_AGE:
            return self._up
        low = self.remaining is not None and self.remaining < LOW_REMAINING
        if low or self.budget.wait() > 0:  # no room: the formation's own reads come first
            return None
        try:
            up = self._fetch_dynos()
        except PlatformError:
            return None
        self._up, self._up_at = up, now
        self._up_for = {p: f.quantity for p, f in formation.items()}
        return up

    def _fetch_dynos(self) -> dict[str, int]:
        dynos: list[Any] = []
        headers: dict[str, str] = {}
        for _ in range(DYNO_PAGES):
            response = self.http.request("GET", self._dynos_path, headers=headers)
            if response.status_code not in (200, 206):
                raise self._error(response, "reading the dynos")
            page = response.json()
            if not isinstance(page, list):
                raise PlatformError(f"heroku: expected a dyno list, got {type(page).__name__}")
            dynos.extend(page)
            more = response.headers.get("next-range")
            if response.status_code == 200 or not more:
                return parse_dynos(dynos)
            headers = {"Range": more}
        raise PlatformError(f"heroku: more than {DYNO_PAGES} pages of dynos")

    def _select(
        self, formation: Mapping[str, Formation], processes: Sequence[str]
    ) -> dict[str, Formation]:
        missing = [p for p in processes if p not in formation]
        if missing:
            raise PlatformError(
                f"heroku: app {self.config.app} has no process type {', '.join(missing)} "
                f"(it has {', '.join(sorted(formation)) or 'none'})"
            )
        return {p: formation[p] for p in processes}

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        now = self._select(self._fetch(priority=True), list(targets))  # re-read just before
        moved = {
            p: f.quantity for p, f in now.items() if p in expected and f.quantity != expected[p]
        }
        if moved:
            changes = ", ".join(f"{p} is {q} (expected {expected[p]})" for p, q in moved.items())
            raise Conflict(
                f"heroku: the formation changed since it was read: {changes}; not written"
            )
        updates = [
            {"type": p, "quantity": int(q)} for p, q in targets.items() if now[p].quantity != q
        ]
        if not updates:
            return
        self._cached_at = None  # whatever happens next, the cache no longer holds
        response = self.http.request("PATCH", self._path, json={"updates": updates}, write=True)
        if response.status_code == 422:
            asked = ", ".join(f"{u['type']}={u['quantity']}" for u in updates)
            raise rejection(response, f"scaling {asked}")
        if response.status_code != 200:
            raise self._error(response, "scaling")
        self._remember(parse_formation(response.json()))

    def check(self, processes: Sequence[str]) -> str:
        """Read the formation once (no write): proves the token, the app and the process types."""
        try:
            response = self.http.request("GET", self._path, priority=True)
        except PlatformError as exc:
            raise PlatformError(f"{exc} (HEROKU_API_URL={self.config.api_url})") from None
        if response.status_code == 401:
            raise ConfigError({"HEROKU_API_TOKEN": f"refused by Heroku: {error_message(response)}"})
        if response.status_code in (403, 404):
            raise ConfigError(
                {
                    "HEROKU_APP_NAME": f"{self.config.app!r}: {response.status_code} "
                    f"{error_message(response)}"
                }
            )
        if response.status_code != 200:
            raise self._error(response, "reading the formation")
        formation = parse_formation(response.json())
        self._remember(formation)
        missing = [p for p in processes if p not in formation]
        if missing:
            raise ConfigError(
                {
                    "AUTOSCALER_PROCESSES": f"app {self.config.app} has no process type "
                    f"{', '.join(missing)} (it has {', '.join(sorted(formation)) or 'none'})"
                }
            )
        shown = ", ".join(f"{p}={formation[p].quantity}" for p in processes)
        left = f"; rate limit remaining {self.remaining}" if self.remaining is not None else ""
        return f"heroku app {self.config.app}: {shown}{left}"

    def close(self) -> None:
        self.http.close()


def build(
    config: DaemonConfig,
    own: HerokuSettings | None = None,
) -> Heroku:
    return Heroku(parse(config, own), timeout=min(8.0, max(2.0, config.tick_timeout)))


ADAPTER = PlatformAdapter(
    HerokuSettings,
    NoSettings,
    configkit.global_only(parse),
    configkit.global_only(build),
    lambda own, per_process: own.app_name,
)
