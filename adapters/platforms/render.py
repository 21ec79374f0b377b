"""Render REST API: one service per process, scaled with ``POST /services/{id}/scale``.

Each managed process names its service with ``AUTOSCALER_<P>_RENDER_SERVICE_ID``. The quantity
is ``serviceDetails.numInstances`` from ``GET /services/{id}``; a scale is
``POST /services/{id}/scale`` with ``{"numInstances": N}``, answered 202 with no body.

Render ignores manual scaling while its own autoscaling is enabled on a service, so this adapter
refuses to manage such a service and says how to fix it. A suspended service reads as 0 (nothing
runs), which the policy leaves alone.

Rate limits (documented per API key): 30 a minute for "other" POSTs, which include ``/scale``,
and 400 a minute for GETs. Answers carry ``Ratelimit-Remaining`` and ``Ratelimit-Reset``: Render's
OpenAPI and its answers give seconds until the window resets, its rate-limit page a UTC epoch in
seconds, so both are accepted (a value above 1e9 is an epoch) and no reset holds calls back for
more than an hour; a 429 carries ``Retry-After``. This adapter paces itself
below both limits with one budget per class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from autoscaler.clock import Clock, SystemClock
from autoscaler.configkit import (
    DaemonConfig,
    EnvSettings,
    PlatformAdapter,
    Text,
    Url,
    read,
    read_each,
)
from autoscaler.model import Formation
from autoscaler.platforms._http import (
    CallBudget,
    Http,
    bearer_headers,
    error_message,
    iso_seconds,
    reset_delay,
)
from autoscaler.ports import ConfigError, Conflict, PlatformError, Rejected, WriteUnknown
from autoscaler.redact import redact, register_secret

READS_PER_MINUTE, READ_BURST = 300, 20  # documented: 400 GETs a minute
WRITES_PER_MINUTE, WRITE_BURST = 20, 5  # documented: 30 "other" POSTs a minute
_SERVICE_ID = re.compile(r"^[a-z]{2,5}-[a-z0-9]{6,40}$")


@dataclass(frozen=True, slots=True)
class RenderConfig:
    api_key: str
    api_url: str
    services: Mapping[str, str]  # process -> service id
    variables: Mapping[str, str]  # process -> the variable that names its service


@dataclass(frozen=True, slots=True)
class Service:
    """What this adapter needs from a ``service`` object."""

    id: str
    instances: int
    autoscaling: bool
    suspended: bool
    updated_at: float | None


class RenderSettings(EnvSettings):
    """The Render platform's variables."""

    model_config = SettingsConfigDict(env_prefix="RENDER_")

    api_key: Text = Field(description="an API key (`rnd_…`)")
    api_url: Url = Field(
        "https://api.render.com/v1", description="the API (tests and staging point elsewhere)"
    )


class RenderProcessSettings(EnvSettings):
    """Per process (``AUTOSCALER_<P>_``) on Render."""

    render_service_id: Text = Field(
        description="the id of the service that runs this process (`srv-…`, shown in the "
        "service's dashboard URL)"
    )


def parse(
    config: DaemonConfig,
    own: RenderSettings | None = None,
    per_process: Mapping[str, RenderProcessSettings] | None = None,
) -> RenderConfig:
    """Render's settings: each process names a service of its own, by a well-formed id."""
    own = own or read(RenderSettings, config.env)
    per_process = per_process or read_each(RenderProcessSettings, config)
    problems: dict[str, str] = {}
    services: dict[str, str] = {}
    variables: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name, process in config.processes.items():
        var = process.var_prefix + "RENDER_SERVICE_ID"
        variables[name] = var
        sid = per_process[name].render_service_id
        if not _SERVICE_ID.match(sid):
            problems[var] = f"{sid!r} is not a Render service id (like srv-abc123…)"
        elif sid in owner:
            problems[var] = f"{sid} is already the service of {owner[sid]}"
        else:
            owner[sid] = name
            services[name] = sid
    if problems:
        raise ConfigError(problems)
    return RenderConfig(own.api_key, own.api_url, services, variables)


def parse_service(body: Any) -> Service:
    """A ``GET /services/{id}`` answer; ``PlatformError`` for one without an instance count."""
    details = body.get("serviceDetails") if isinstance(body, dict) else None
    sid = body.get("id") if isinstance(body, dict) else None
    if not isinstance(sid, str) or not isinstance(details, dict):
        raise PlatformError(redact(f"render: unreadable service {body!r:.200}"))
    instances = details.get("numInstances")
    if isinstance(instances, bool) or not isinstance(instances, int):
        kind = body.get("type", "unknown")
        raise PlatformError(
            f"render: service {sid} ({kind}) has no instance count; only web services, "
            "private services and background workers can be scaled"
        )
    autoscaling = details.get("autoscaling")
    return Service(
        id=sid,
        instances=instances,
        autoscaling=isinstance(autoscaling, dict) and autoscaling.get("enabled") is True,
        suspended=body.get("suspended") == "suspended",
        updated_at=iso_seconds(body.get("updatedAt")),
    )


class Render:
    """The ``Platform`` for the Render services of one app."""

    name = "render"

    def __init__(
        self,
        config: RenderConfig,
        *,
        clock: Clock | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        register_secret(config.api_key)
        self.config = config
        self.clock = clock or SystemClock()
        self.reads = CallBudget(
            "render GET", READS_PER_MINUTE, 60.0, burst=READ_BURST, reserve=4, clock=self.clock
        )
        self.writes = CallBudget(
            "render POST", WRITES_PER_MINUTE, 60.0, burst=WRITE_BURST, clock=self.clock
        )
        self.http = Http(
            "render",
            config.api_url,
            bearer_headers(config.api_key),
            budget=self.reads,
            timeout=timeout,
            clock=self.clock,
            on_response=self._observe,
            transport=transport,
        )

    def _observe(self, response: httpx.Response) -> None:
        """``Ratelimit-Remaining: 0`` blocks that class until ``Ratelimit-Reset``.

        The reset is read as a delay or as a UTC epoch (``reset_delay``), and never holds calls
        back for more than an hour.
        """
        remaining = response.headers.get("ratelimit-remaining", "").strip()
        reset = reset_delay(response.headers.get("ratelimit-reset", ""), self.clock.now().wall)
        if remaining == "0" and reset is not None:
            budget = self.reads if response.request.method == "GET" else self.writes
            budget.block(reset)

    def _service(self, process: str, *, priority: bool = False) -> Service:
        sid = self.config.services[process]
        response = self.http.request("GET", f"/services/{sid}", priority=priority)
        if response.status_code != 200:
            raise self._error(response, process, "reading the service")
        return parse_service(response.json())

    def _error(self, response: httpx.Response, process: str, what: str) -> PlatformError:
        sid, status = self.config.services[process], response.status_code
        text = f"render: {what} {sid} ({process}): {status} {error_message(response)}"
        if status == 401:
            text += "; check RENDER_API_KEY"
        elif status in (403, 404):
            text += f"; check {self.config.variables[process]}"
        return PlatformError(redact(text))

    def _refuse_autoscaled(self, process: str, service: Service) -> None:
        if service.autoscaling:
            raise Rejected(_autoscaling_message(process, service.id), retryable=False)

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        out: dict[str, Formation] = {}
        for process in processes:
            service = self._service(process)
            self._refuse_autoscaled(process, service)
            quantity = 0 if service.suspended else service.instances
            out[process] = Formation(quantity=quantity, updated_at=service.updated_at)
        return out

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        now = {p: self._service(p, priority=True) for p in targets}  # re-read just before
        for process, service in now.items():
            self._refuse_autoscaled(process, service)
            if service.suspended:
                raise Rejected(
                    f"render: service {service.id} ({process}) is suspended; resume it first",
                    retryable=False,
                )
        moved = {
            p: s.instances for p, s in now.items() if p in expected and s.instances != expected[p]
        }
        if moved:
            changes = ", ".join(f"{p} is {q} (expected {expected[p]})" for p, q in moved.items())
            raise Conflict(f"render: the instance count changed since it was read: {changes}")
        done: list[str] = []
        for process, quantity in targets.items():
            if now[process].instances == quantity:
                continue
            try:
                self._post_scale(process, int(quantity))
            except PlatformError as exc:
                if not done:
                    raise
                raise WriteUnknown(
                    f"render: scaled {', '.join(done)} but not {process}: {exc}"
                ) from None
            done.append(f"{process}={quantity}")

    def _post_scale(self, process: str, quantity: int) -> None:
        sid = self.config.services[process]
        response = self.http.request(
            "POST",
            f"/services/{sid}/scale",
            json={"numInstances": quantity},
            write=True,
            budget=self.writes,
        )
        if response.status_code in (200, 202, 204):
            return
        if response.status_code in (400, 422):
            message = error_message(response)
            raise Rejected(
                redact(f"render: scaling {sid} ({process}) to {quantity} refused: {message}"),
                retryable=False,
            )
        raise self._error(response, process, "scaling")

    def check(self, processes: Sequence[str]) -> str:
        """Read every service once (no write): proves the key, the ids, and manual scaling."""
        shown: list[str] = []
        for process in processes:
            var = self.config.variables[process]
            response = self.http.request(
                "GET", f"/services/{self.config.services[process]}", priority=True
            )
            if response.status_code == 401:
                raise ConfigError(
                    {"RENDER_API_KEY": f"refused by Render: {error_message(response)}"}
                )
            if response.status_code in (403, 404):
                raise ConfigError({var: f"{response.status_code} {error_message(response)}"})
            if response.status_code != 200:
                raise self._error(response, process, "reading the service")
            service = parse_service(response.json())
            if service.autoscaling:
                raise ConfigError({var: _autoscaling_message(process, service.id)})
            state = " (suspended)" if service.suspended else ""
            shown.append(f"{process}={service.instances}{state}")
        return "render: " + ", ".join(shown)

    def close(self) -> None:
        self.http.close()


def _autoscaling_message(process: str, sid: str) -> str:
    return (
        f"render: Render's own autoscaling is enabled on service {sid} ({process}), and Render "
        "ignores manual scaling while it is on; turn it off in the service's Scaling settings "
        "or stop managing this process here"
    )


def build(
    config: DaemonConfig,
    own: RenderSettings | None = None,
    per_process: Mapping[str, RenderProcessSettings] | None = None,
) -> Render:
    return Render(parse(config, own, per_process), timeout=min(8.0, max(2.0, config.tick_timeout)))


def _scope(own: RenderSettings, per_process: Mapping[str, RenderProcessSettings]) -> str:
    ids = sorted(p.render_service_id for p in per_process.values())
    return ids[0] if ids else ""


ADAPTER = PlatformAdapter(RenderSettings, RenderProcessSettings, parse, build, _scope)
