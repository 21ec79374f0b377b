"""A local fake of Railway's public GraphQL API (``POST /graphql/v2``) over real HTTP.

It answers the operations the adapter and the official CLI use for replicas:

- ``serviceInstance(serviceId:, environmentId:)`` (aliased or not), with ``numReplicas``,
  ``region`` and ``latestDeployment { id status createdAt meta }`` where ``meta`` holds
  ``serviceManifest.deploy.multiRegionConfig`` (``{"<region>": {"numReplicas": N}}``), or the
  legacy ``region``/``numReplicas`` pair for a service created with ``legacy=True``;
- ``environmentPatchCommit(environmentId:, patch:, commitMessage:)`` with a patch
  ``{"services": {"<id>": {"deploy": {"multiRegionConfig": {...}}}}}`` (``null`` removes a
  region), which starts a deployment (``DEPLOYING`` for ``deploy_delay`` seconds, then
  ``SUCCESS``).

As Railway does, errors come back with HTTP 200 and an ``errors`` list ("Not Authorized" for a
bad token), every answer carries ``X-RateLimit-Limit/-Remaining/-Reset`` (Reset: epoch seconds;
the docs do not say which unit, an assumption), and past ``hourly_limit`` calls in an hour the
answer is 429 with ``Retry-After``; ``over_limit`` counts those. It checks that every ``$var``
used is declared and given, as a GraphQL server does. Faults come from ``FakeServer``; add
``graphql_error`` for an error answered with 200.
"""

from __future__ import annotations

import datetime
import io
import itertools
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from autoscaler.clock import Clock
from tests.platforms.fakeserver import Call, FakeServer, Fault, Reply

PATH = "/graphql/v2"
MAX_REPLICAS = 50
_INSTANCE = re.compile(r"(?:(?P<alias>\w+)\s*:\s*)?serviceInstance\s*\((?P<args>[^)]*)\)")
_ARG = re.compile(r"(\w+)\s*:\s*\$(\w+)")
_DECLARED = re.compile(r"\$(\w+)\s*:")
_USED = re.compile(r"\$(\w+)\b(?!\s*:)")


class FakeRailway(FakeServer):
    name = "railway"

    def __init__(
        self,
        *,
        token: str = "railway-test-token",
        environment_id: str = "env-0b6c7d1e",
        clock: Clock | None = None,
        hourly_limit: int = 1000,
        deploy_delay: float = 0.0,
    ) -> None:
        super().__init__(clock)
        self.token = token
        self.environment_id = environment_id
        self.hourly_limit = hourly_limit
        self.deploy_delay = deploy_delay
        self.services: dict[str, dict[str, Any]] = {}
        self.commits: list[dict[str, Any]] = []  # every accepted patch, in order
        self.over_limit = 0
        self._window: tuple[float, int] | None = None  # (start wall, calls)
        self._graphql_errors: list[tuple[str, str | None]] = []
        self._ids = itertools.count(1)
        self._faults_for: str | None = None
        self._peek = threading.local()

    # -- set-up and inspection ------------------------------------------------------------

    def add_service(
        self, service_id: str, regions: dict[str, int] | None = None, *, legacy: bool = False
    ) -> None:
        with self.lock:
            self.services[service_id] = {"regions": {}, "legacy": legacy, "deployments": []}
            self._deploy(service_id, dict(regions or {"us-east4-eqdc4a": 1}), "SUCCESS")

    def replicas(self, service_id: str) -> int:
        with self.lock:
            return sum(self.services[service_id]["regions"].values())

    def regions(self, service_id: str) -> dict[str, int]:
        with self.lock:
            return dict(self.services[service_id]["regions"])

    def graphql_error(self, message: str, *, times: int = 1, operation: str | None = None) -> None:
        """Answer the next ``times`` requests (whose query contains ``operation``) with HTTP 200
        and ``{"errors": [{"message": message}]}``."""
        with self.lock:
            self._graphql_errors.extend([(message, operation)] * times)

    def faults_only_for(self, text: str | None) -> None:
        """Apply ``fail``/``slow``/``drop``/``chaos`` only to requests whose body contains
        ``text`` (e.g. ``"mutation"``: the write, not the re-read before it)."""
        with self.lock:
            self._faults_for = text

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        socket_file = handler.rfile
        handler.rfile = io.BytesIO(raw)  # the base class reads the body again...
        self._peek.body = raw.decode("utf-8", "replace")
        try:
            super()._serve(handler)
        finally:
            handler.rfile = socket_file  # ...and the connection stays usable (keep-alive)

    def _next_fault(self, method: str, path: str) -> Fault | None:
        wanted = self._faults_for
        if wanted is not None and wanted not in getattr(self._peek, "body", ""):
            return None
        return super()._next_fault(method, path)

    def mutations(self) -> list[Call]:
        return [c for c in self.calls("POST") if "mutation" in str((c.body or {}).get("query"))]

    # -- Railway's shapes -----------------------------------------------------------------

    def _stamp(self) -> str:
        wall = self.clock.now().wall
        return (
            datetime.datetime.fromtimestamp(wall, datetime.UTC).isoformat().replace("+00:00", "Z")
        )

    def _deploy(self, service_id: str, regions: dict[str, int], status: str) -> str:
        service = self.services[service_id]
        service["regions"] = regions
        if service["legacy"] and len(regions) == 1:
            ((region, n),) = regions.items()
            deploy: dict[str, Any] = {"region": region, "numReplicas": n}
        else:
            deploy = {"multiRegionConfig": {r: {"numReplicas": n} for r, n in regions.items()}}
        deployment = {
            "id": f"dep-{next(self._ids):04d}",
            "status": status,
            "createdAt": self._stamp(),
            "meta": {"serviceManifest": {"deploy": deploy, "build": {"builder": "NIXPACKS"}}},
            "_ready_at": self.clock.now().mono + self.deploy_delay,
        }
        service["deployments"].append(deployment)
        return str(deployment["id"])

    def _instance(self, service_id: str) -> dict[str, Any]:
        service = self.services[service_id]
        latest = dict(service["deployments"][-1])
        if latest["status"] == "DEPLOYING" and latest.pop("_ready_at") <= self.clock.now().mono:
            service["deployments"][-1]["status"] = latest["status"] = "SUCCESS"
        latest.pop("_ready_at", None)
        regions = service["regions"]
        return {
            "id": f"si-{service_id}",
            "serviceId": service_id,
            "environmentId": self.environment_id,
            "region": next(iter(regions)) if len(regions) == 1 else None,
            "numReplicas": sum(regions.values()),
            "latestDeployment": latest,
        }

    def error(self, status: int) -> Reply:
        headers = {"Retry-After": "7"} if status == 429 else {}
        message = "Rate limit exceeded" if status == 429 else f"injected {status}"
        return Reply(status, {"errors": [{"message": message}]}, headers)

    # -- behaviour --------------------------------------------------------------------------

    def _allowance(self) -> tuple[bool, dict[str, str]]:
        wall = self.clock.now().wall
        if self._window is None or wall >= self._window[0] + 3600:
            self._window = (wall, 0)
        start, used = self._window[0], self._window[1] + 1
        self._window = (start, used)
        reset = start + 3600
        headers = {
            "X-RateLimit-Limit": str(self.hourly_limit),
            "X-RateLimit-Remaining": str(max(0, self.hourly_limit - used)),
            "X-RateLimit-Reset": str(int(reset)),
        }
        if used > self.hourly_limit:
            headers["Retry-After"] = str(max(1, int(reset - wall)))
            return False, headers
        return True, headers

    def route(self, call: Call) -> Reply:
        allowed, headers = self._allowance()
        if not allowed:
            self.over_limit += 1
            return Reply(429, {"errors": [{"message": "Rate limit exceeded"}]}, headers)
        reply = self._answer(call)
        reply.headers.update(headers)
        return reply

    def _answer(self, call: Call) -> Reply:
        if call.method != "POST" or call.path.split("?")[0] != PATH:
            return Reply(404, {"errors": [{"message": "Not Found"}]})
        body = call.body if isinstance(call.body, dict) else {}
        query, variables = str(body.get("query") or ""), body.get("variables") or {}
        if call.headers.get("authorization") != f"Bearer {self.token}":
            return _errors("Not Authorized")
        for i, (message, operation) in enumerate(self._graphql_errors):
            if operation is None or operation in query:
                del self._graphql_errors[i]
                return _errors(message)
        declared = set(_DECLARED.findall(query))
        for name in set(_USED.findall(query)) - declared:
            return _errors(f'Variable "${name}" is not defined.')
        for name in declared - set(variables):
            return _errors(f'Variable "${name}" of required type was not provided.')
        if "environmentPatchCommit" in query:
            return self._patch_commit(variables)
        if "serviceInstance" in query:
            return self._read(query, variables)
        return _errors("Cannot query field (the fake serves serviceInstance and "
                       "environmentPatchCommit only)")  # fmt: skip

    def _read(self, query: str, variables: dict[str, Any]) -> Reply:
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for match in _INSTANCE.finditer(query):
            alias = match["alias"] or "serviceInstance"
            args = {name: variables.get(var) for name, var in _ARG.findall(match["args"])}
            service_id = args.get("serviceId")
            if args.get("environmentId") != self.environment_id or service_id not in self.services:
                data[alias] = None
                errors.append({"message": "ServiceInstance not found", "path": [alias]})
            else:
                data[alias] = self._instance(str(service_id))
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = errors
        return Reply(200, body)

    def _patch_commit(self, variables: dict[str, Any]) -> Reply:
        if variables.get("environmentId") != self.environment_id:
            return _errors("Environment not found")
        patch = variables.get("patch")
        services = patch.get("services") if isinstance(patch, dict) else None
        if not isinstance(services, dict) or set(patch) != {"services"}:
            return _errors("Invalid patch: expected {services: {...}}")
        updates: dict[str, dict[str, int]] = {}
        for service_id, change in services.items():
            if service_id not in self.services:
                return _errors(f"Service {service_id} not found")
            config = (change or {}).get("deploy", {}).get("multiRegionConfig")
            if not isinstance(config, dict) or set(change) != {"deploy"}:
                return _errors("Invalid patch: expected deploy.multiRegionConfig")
            regions = dict(self.services[service_id]["regions"])
            for region, entry in config.items():
                if entry is None:
                    regions.pop(region, None)
                elif isinstance(entry, dict) and isinstance(entry.get("numReplicas"), int):
                    regions[region] = entry["numReplicas"]
                else:
                    return _errors(f"Invalid multiRegionConfig entry for {region}")
            if sum(regions.values()) > MAX_REPLICAS:
                return _errors(f"A service can have at most {MAX_REPLICAS} replicas")
            updates[service_id] = regions
        for service_id, regions in updates.items():
            self._deploy(service_id, regions, "DEPLOYING" if self.deploy_delay else "SUCCESS")
        self.commits.append({"patch": patch, "message": variables.get("commitMessage")})
        return Reply(200, {"data": {"environmentPatchCommit": f"commit-{len(self.commits)}"}})


def _errors(message: str) -> Reply:
    return Reply(200, {"data": None, "errors": [{"message": message, "locations": []}]})
