"""Railway: the public GraphQL API (``RAILWAY_API_URL``, default
``https://backboard.railway.com/graphql/v2``).

One Railway service per managed process (``AUTOSCALER_<P>_RAILWAY_SERVICE_ID``) in one
environment (``RAILWAY_ENVIRONMENT_ID``). A service's replicas live per region in its deploy
config's ``multiRegionConfig`` (``{"<region>": {"numReplicas": N}}``); the quantity is their sum.

Scaling does what the official CLI's ``railway scale`` does today: read the region map from the
service's latest deployment (``meta.serviceManifest.deploy``, falling back to the legacy
``region`` + ``numReplicas`` pair), change it, and send it with one ``environmentPatchCommit``
(a patch ``{"services": {"<id>": {"deploy": {"multiRegionConfig": ...}}}}``), which commits
the change and rolls it out. We prefer it over the older CLI's path,
``serviceInstanceUpdate(input: {multiRegionConfig})`` (or ``{numReplicas}``) followed by
``serviceInstanceDeployV2``: one call instead of two per service (all processes go in one
patch), the shape the current CLI and the dashboard write, and no separate redeploy to forget.
Changes land in the region holding the most replicas; a region brought to 0 is sent as ``null``,
which is how the CLI and dashboard remove a region.

Errors often come back with HTTP 200 and an ``errors`` list; they are typed like HTTP errors.
Railway allows about 1,000 API calls an hour: reads and writes share a token bucket well under
that, ``X-RateLimit-Remaining`` near zero blocks calls until ``X-RateLimit-Reset``, a 429's
``Retry-After`` is honoured, and when the bucket holds back a read, the last formation (if
recent) is returned instead; the re-read just before a write always goes to the API.
"""

from __future__ import annotations

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
    process_prefix,
    read,
    read_each,
)
from autoscaler.model import Formation
from autoscaler.platforms._http import CallBudget, Http, error_message, iso_seconds, reset_delay
from autoscaler.ports import ConfigError, Conflict, PlatformError, RateLimited, Rejected
from autoscaler.redact import redact, register_secret

#: Railway's documented public API allowance (requests per hour)
HOURLY_LIMIT = 1000
#: what we allow ourselves: 80% of it, leaving room for the dashboard, the CLI and CI
BUDGET = 800
BURST = 20
WRITE_RESERVE = 4
#: a cached formation older than this is never served in place of a read
CACHE_MAX_AGE = 120.0
#: below this many calls left in Railway's window, wait for the window to reset
REMAINING_FLOOR = 20
#: Railway's per-service replica ceiling (the CLI checks the same)
MAX_REPLICAS = 50
#: deployment statuses that mean a rollout is under way
IN_PROGRESS = frozenset({"BUILDING", "DEPLOYING", "INITIALIZING", "QUEUED", "WAITING"})


# ---- configuration (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class RailwayConfig:
    api_url: str
    token: str
    environment_id: str
    services: Mapping[str, str]  # process -> Railway service id
    timeout: float = 10.0


class RailwaySettings(EnvSettings):
    """The Railway platform's variables."""

    model_config = SettingsConfigDict(env_prefix="RAILWAY_")

    api_token: Text = Field(description="an account or team token")
    environment_id: Text = Field(description="the environment whose services are scaled")
    api_url: Url = Field(
        "https://backboard.railway.com/graphql/v2",
        description="the public GraphQL API (tests point elsewhere)",
    )


class RailwayProcessSettings(EnvSettings):
    """Per process (``AUTOSCALER_<P>_``) on Railway."""

    railway_service_id: Text = Field(description="the id of the service that runs this process")


def parse(
    config: DaemonConfig,
    own: RailwaySettings | None = None,
    per_process: Mapping[str, RailwayProcessSettings] | None = None,
) -> RailwayConfig:
    """Railway's settings for the adapter; raise ``ConfigError`` naming each bad one."""
    own = own or read(RailwaySettings, config.env)
    per_process = per_process or read_each(RailwayProcessSettings, config)
    problems = {
        process.var_prefix + "MIN": "0 is out of range on Railway: at least 1 instance (this "
        "daemon never removes a service's last replica; use Railway's serverless sleeping for "
        "idle services)"
        for process in config.processes.values()
        if process.min == 0
    }
    if problems:
        raise ConfigError(problems)
    return RailwayConfig(
        api_url=own.api_url,
        token=own.api_token,
        environment_id=own.environment_id,
        services={name: p.railway_service_id for name, p in per_process.items()},
        timeout=min(10.0, config.tick_timeout),
    )


# ---- GraphQL documents and answers (pure) -----------------------------------------------------

INSTANCE_FIELDS = "id region numReplicas latestDeployment { id status createdAt meta }"

PATCH_COMMIT = (
    "mutation autoscalerScale($environmentId: String!, $patch: EnvironmentConfig!, "
    "$commitMessage: String) { environmentPatchCommit(environmentId: $environmentId, "
    "patch: $patch, commitMessage: $commitMessage) }"
)


def read_query(count: int) -> str:
    """One query for ``count`` services: aliases ``s0``... with variables ``$s0``..."""
    params = "".join(f", $s{i}: String!" for i in range(count))
    fields = " ".join(
        f"s{i}: serviceInstance(serviceId: $s{i}, environmentId: $environmentId) "
        f"{{ {INSTANCE_FIELDS} }}"
        for i in range(count)
    )
    return f"query autoscalerRead($environmentId: String!{params}) {{ {fields} }}"


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def regions_of(instance: Mapping[str, Any]) -> dict[str, int]:
    """Replicas per region, read as the CLI reads them: the latest deployment's
    ``multiRegionConfig``, else its legacy ``region``/``numReplicas``, else the instance's."""
    deploy = _dig(instance, "latestDeployment", "meta", "serviceManifest", "deploy")
    config = _dig(deploy, "multiRegionConfig")
    if isinstance(config, Mapping):
        out = {}
        for region, entry in config.items():
            replicas = _dig(entry, "numReplicas")
            if isinstance(replicas, int) and replicas > 0:
                out[str(region)] = replicas
        return out
    for source in (deploy, instance):
        region = _dig(source, "region")
        if isinstance(region, str) and region:
            replicas = _dig(source, "numReplicas")
            return {region: replicas if isinstance(replicas, int) else 1}
    replicas = instance.get("numReplicas")
    if isinstance(replicas, int):
        return {"": replicas}  # no region known: a quantity, but nothing to scale in
    raise PlatformError("railway: the service instance reports no replicas at all")


def formation_of(instance: Mapping[str, Any]) -> Formation:
    status = _dig(instance, "latestDeployment", "status")
    return Formation(
        quantity=sum(regions_of(instance).values()),
        updated_at=iso_seconds(_dig(instance, "latestDeployment", "createdAt")),
        deploying=status in IN_PROGRESS,
    )


def spread(regions: Mapping[str, int], target: int) -> dict[str, int | None]:
    """The new region map for ``target`` replicas: each added replica goes to the region with
    the most (ties: the first by name), each removed one comes from the same; a region brought
    to 0 becomes ``None`` (removed). Raises ``ValueError`` when there is no region to use."""
    if "" in regions or not regions:
        raise ValueError("the service has no region to scale in")
    if target < 1:
        raise ValueError("a Railway service keeps at least one replica")
    counts = dict(regions)
    order = sorted(counts)  # stable tie-break
    while sum(counts.values()) < target:
        counts[max(order, key=lambda r: counts[r])] += 1
    while sum(counts.values()) > target:
        counts[max(order, key=lambda r: counts[r])] -= 1
    return {r: (n if n > 0 else None) for r, n in counts.items()}


def patch_for(changes: Mapping[str, Mapping[str, int | None]]) -> dict[str, Any]:
    """``environmentPatchCommit``'s ``patch``: service id -> region map."""
    return {
        "services": {
            service: {
                "deploy": {
                    "multiRegionConfig": {
                        r: (None if n is None else {"numReplicas": n}) for r, n in regions.items()
                    }
                }
            }
            for service, regions in changes.items()
        }
    }


def graphql_errors(body: Any) -> list[Mapping[str, Any]]:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(errors, list):
        return []
    return [e if isinstance(e, Mapping) else {"message": str(e)} for e in errors]


class AuthRejected(Rejected):
    """Railway refused the token."""


def classify(errors: Sequence[Mapping[str, Any]], what: str) -> PlatformError:
    """A typed error for GraphQL ``errors`` (which Railway sends with HTTP 200)."""
    text = "; ".join(str(e.get("message", "?")) for e in errors)[:400]
    lowered = text.lower()
    message = redact(f"railway: {what}: {text}")
    if "not authorized" in lowered or "unauthorized" in lowered or "token" in lowered:
        return AuthRejected(message + " (is RAILWAY_API_TOKEN valid?)", retryable=False)
    if "rate limit" in lowered or "too many" in lowered:
        return RateLimited(message)
    if "not found" in lowered:
        return Rejected(message + " (check the service and environment ids)", retryable=False)
    return Rejected(message, retryable=True)


# ---- the adapter ------------------------------------------------------------------------------


class RailwayPlatform:
    """The ``Platform`` for services in one Railway environment."""

    name = "railway"

    def __init__(
        self,
        config: RailwayConfig,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        register_secret(config.token)
        self.config = config
        self.clock = clock or SystemClock()
        self.budget = budget or CallBudget(
            "railway", BUDGET, 3600.0, burst=BURST, reserve=WRITE_RESERVE, clock=self.clock
        )
        url = httpx.URL(config.api_url)
        self._path = url.raw_path.decode("ascii") or "/"
        self.http = Http(
            "railway",
            str(url.copy_with(raw_path=b"/", query=None)),
            {"Authorization": f"Bearer {config.token}", "Content-Type": "application/json"},
            budget=self.budget,
            timeout=config.timeout,
            clock=self.clock,
            on_response=self._watch_allowance,
            transport=transport,
        )
        self._cache: tuple[float, dict[str, Formation]] | None = None

    def _watch_allowance(self, response: httpx.Response) -> None:
        """Stop before Railway's own window runs out (``X-RateLimit-Remaining``/``-Reset``)."""
        try:
            remaining = int(response.headers["x-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        # an epoch timestamp, or seconds from now (the docs do not say which)
        wait = reset_delay(response.headers.get("x-ratelimit-reset", "60"), self.clock.now().wall)
        if remaining <= REMAINING_FLOOR and wait is not None:
            self.budget.block(max(wait, 1.0))

    # ---- GraphQL ----

    def _post(
        self, document: str, variables: Mapping[str, Any], what: str, *, write: bool, priority: bool
    ) -> Any:
        body = {"query": document, "variables": dict(variables)}
        response = self.http.request("POST", self._path, json=body, write=write, priority=priority)
        status = response.status_code
        if status != 200:
            text = f"railway: {what}: {status} {error_message(response)}"
            if status in (401, 403):
                raise AuthRejected(text + " (is RAILWAY_API_TOKEN valid?)", retryable=False)
            raise Rejected(text, retryable=status not in (400, 404))
        try:
            data = response.json()
        except ValueError:
            raise PlatformError(f"railway: {what}: the answer is not JSON") from None
        errors = graphql_errors(data)
        if errors:
            raise classify(errors, what)
        return data.get("data") if isinstance(data, Mapping) else None

    def instances(
        self, processes: Sequence[str], *, priority: bool = False
    ) -> dict[str, Mapping[str, Any]]:
        """Each process's service instance, in one query."""
        services = [self.config.services[p] for p in processes]
        variables: dict[str, Any] = {"environmentId": self.config.environment_id}
        variables.update({f"s{i}": s for i, s in enumerate(services)})
        query = read_query(len(services))
        data = self._post(query, variables, "read replicas", write=False, priority=priority)
        out = {}
        for i, process in enumerate(processes):
            instance = _dig(data, f"s{i}")
            if not isinstance(instance, Mapping):
                raise Rejected(
                    f"railway: service {services[i]!r} ({process}) has no instance in "
                    f"environment {self.config.environment_id!r}",
                    retryable=False,
                )
            out[process] = instance
        return out

    # ---- Platform ----

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        now = self.clock.now().mono
        if self._cache is not None and self.budget.wait() > 0:
            at, cached = self._cache
            if now - at <= CACHE_MAX_AGE and all(p in cached for p in processes):
                return {p: cached[p] for p in processes}
        found = {p: formation_of(i) for p, i in self.instances(processes).items()}
        self._cache = (now, found)
        return found

    def check(self, processes: Sequence[str]) -> str:
        """One read per process, so that a failure names the variable to fix."""
        parts = []
        for process in processes:
            try:
                instance = self.instances([process], priority=True)[process]
            except AuthRejected as exc:
                raise ConfigError({"RAILWAY_API_TOKEN": str(exc)}) from None
            except Rejected as exc:
                if exc.retryable:
                    raise
                var = process_prefix(process) + "RAILWAY_SERVICE_ID"
                raise ConfigError({var: f"{exc} (or RAILWAY_ENVIRONMENT_ID)"}) from None
            parts.append(f"{process} {formation_of(instance).quantity} replica(s)")
        return f"railway environment {self.config.environment_id}: {', '.join(parts)}"

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        processes = list(targets)
        instances = self.instances(processes, priority=True)  # the re-read before the write
        now = {p: formation_of(i).quantity for p, i in instances.items()}
        self._cache = (self.clock.now().mono, {p: formation_of(i) for p, i in instances.items()})
        drift = {p: q for p, q in now.items() if p in expected and q != expected[p]}
        if drift:
            raise Conflict(
                "railway: replicas changed since the decision: "
                + ", ".join(f"{p} is {q} (expected {expected[p]})" for p, q in drift.items())
            )
        moving = {p: t for p, t in targets.items() if t != now[p]}
        if not moving:
            return  # already there: a patch would only start a needless deployment
        changes: dict[str, dict[str, int | None]] = {}
        for process, target in moving.items():
            if target > MAX_REPLICAS:
                raise Rejected(
                    f"railway: {process}: {target} replicas is above Railway's "
                    f"{MAX_REPLICAS} per service",
                    retryable=False,
                )
            try:
                changes[self.config.services[process]] = spread(
                    regions_of(instances[process]), target
                )
            except ValueError as exc:
                raise Rejected(f"railway: {process}: {exc}", retryable=False) from None
        message = "autoscaler: " + ", ".join(f"{p} {now[p]}->{t}" for p, t in moving.items())
        variables = {
            "environmentId": self.config.environment_id,
            "patch": patch_for(changes),
            "commitMessage": message,
        }
        self._cache = None
        self._post(PATCH_COMMIT, variables, "environmentPatchCommit", write=True, priority=True)

    def close(self) -> None:
        self.http.close()


def build(
    config: DaemonConfig,
    own: RailwaySettings | None = None,
    per_process: Mapping[str, RailwayProcessSettings] | None = None,
) -> RailwayPlatform:
    return RailwayPlatform(parse(config, own, per_process))


ADAPTER = PlatformAdapter(
    RailwaySettings, RailwayProcessSettings, parse, build, lambda own, per: own.environment_id
)
