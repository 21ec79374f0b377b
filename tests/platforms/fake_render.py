"""A fake Render REST API (the service and scale endpoints) following Render's published shapes.

Shapes follow Render's generated OpenAPI types and recorded traffic, as summarised in the
project's research notes:

- ``Authorization: Bearer <key>``; errors as ``{"message": ...}``; 404 ``not found: <id>``;
- ``GET /v1/services/{id}`` (``serviceDetails.numInstances``, ``serviceDetails.autoscaling``,
  ``suspended``), ``GET /v1/services/{id}/instances``;
- ``POST /v1/services/{id}/scale`` ``{"numInstances": N}`` answers 202 with an empty body; while
  the service's own autoscaling is enabled Render ignores the value (still 202);
- rate limits per class in fixed one-minute windows: 400 GETs and 30 "other" POSTs; every answer
  carries ``Ratelimit-Limit``, ``Ratelimit-Remaining`` and ``Ratelimit-Reset`` (seconds until
  the window resets); a 429 adds ``Retry-After`` and ``{"message": "rate limit exceeded"}``.

Unverified details (marked in the research): the exact 400 text for an out-of-range count, and
that a scale request is accepted silently while autoscaling is on.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from autoscaler.clock import Clock

from .fakeserver import Call, FakeServer, Reply

LIMITS = {"GET": 400, "POST": 30}
WINDOW = 60.0
MAX_INSTANCES = 100


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeRender(FakeServer):
    """One Render workspace. ``services`` maps service id -> instance count."""

    name = "render"

    def __init__(
        self,
        *,
        api_key: str = "rnd_fakeRenderKey0123456789",
        services: dict[str, int] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        self.api_key = api_key
        #: send ``Ratelimit-Reset`` as a UTC epoch in seconds (Render's rate-limit page) rather
        #: than as seconds until the reset (its OpenAPI and recorded answers)
        self.reset_as_epoch = False
        now = _iso(self.clock.now().wall)
        self.services: dict[str, dict[str, Any]] = {}
        for sid, count in (services or {"srv-web0000001": 1, "srv-wrk0000001": 1}).items():
            self.services[sid] = {
                "id": sid,
                "name": sid.removeprefix("srv-"),
                "type": "web_service" if "web" in sid else "background_worker",
                "suspended": "not_suspended",
                "suspenders": [],
                "autoDeploy": "yes",
                "createdAt": now,
                "updatedAt": now,
                "ownerId": "tea-fake0000001",
                "slug": sid.removeprefix("srv-"),
                "dashboardUrl": f"https://dashboard.render.com/web/{sid}",
                "serviceDetails": {
                    "numInstances": count,
                    "plan": "standard",
                    "region": "oregon",
                    "runtime": "python",
                    "env": "python",
                },
            }
        self.windows: dict[str, tuple[float, int]] = {}  # class -> (window start, used)

    def instances(self, sid: str) -> int:
        with self.lock:
            return int(self.services[sid]["serviceDetails"]["numInstances"])

    def set_instances(self, sid: str, count: int) -> None:
        """A change made by someone else."""
        with self.lock:
            self.services[sid]["serviceDetails"]["numInstances"] = count
            self.services[sid]["updatedAt"] = _iso(self.clock.now().wall)

    def enable_autoscaling(self, sid: str, low: int = 1, high: int = 3) -> None:
        with self.lock:
            self.services[sid]["serviceDetails"]["autoscaling"] = {
                "enabled": True,
                "min": low,
                "max": high,
                "criteria": {
                    "cpu": {"enabled": True, "percentage": 60},
                    "memory": {"enabled": False, "percentage": 70},
                },
            }

    def writes(self) -> list[Call]:
        return self.calls("POST")

    def error(self, status: int, message: str | None = None) -> Reply:
        reply = Reply(status, {"message": message or f"injected {status}"})
        if status == 429:
            reply.body = {"message": "rate limit exceeded"}
            reply.headers.update({"Retry-After": "7", "Ratelimit-Remaining": "0"})
        return reply

    def _count(self, kind: str) -> tuple[bool, dict[str, str]]:
        """Spend one call of this class in the current window; the rate-limit headers."""
        now = self.clock.now().mono
        start, used = self.windows.get(kind, (now, 0))
        if now - start >= WINDOW:
            start, used = now, 0
        allowed = used < LIMITS[kind]
        used += 1 if allowed else 0
        self.windows[kind] = (start, used)
        reset = max(1, math.ceil(start + WINDOW - now))
        shown = math.ceil(self.clock.now().wall + reset) if self.reset_as_epoch else reset
        headers = {
            "Ratelimit-Limit": str(LIMITS[kind]),
            "Ratelimit-Remaining": str(max(0, LIMITS[kind] - used)),
            "Ratelimit-Reset": str(shown),
        }
        if not allowed:
            headers["Retry-After"] = str(reset)
        return allowed, headers

    def route(self, call: Call) -> Reply:
        reply = self._route(call)
        reply.headers["Render-Request-Id"] = f"fake-{uuid.uuid4()}"
        return reply

    def _route(self, call: Call) -> Reply:
        if call.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(401, "unauthorized")
        kind = "GET" if call.method == "GET" else "POST"
        allowed, headers = self._count(kind)
        if not allowed:
            reply = Reply(429, {"message": "rate limit exceeded"})
            reply.headers.update(headers)
            return reply
        reply = self._endpoint(call)
        reply.headers.update(headers)
        return reply

    def _endpoint(self, call: Call) -> Reply:
        parts = call.path.split("?")[0].strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["v1", "services"]:
            return self.error(404, "not found")
        sid, rest = parts[2], parts[3:]
        service = self.services.get(sid)
        if service is None:
            return self.error(404, f"not found: {sid}")
        if call.method == "GET" and not rest:
            return Reply(200, service)
        if call.method == "GET" and rest == ["instances"]:
            count = service["serviceDetails"]["numInstances"]
            created = service["updatedAt"]
            return Reply(200, [{"id": f"{sid}-{i}", "createdAt": created} for i in range(count)])
        if call.method == "POST" and rest == ["scale"]:
            return self._scale(service, call.body)
        return self.error(404, "not found")

    def _scale(self, service: dict[str, Any], body: Any) -> Reply:
        count = body.get("numInstances") if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int):
            return self.error(400, "numInstances must be an integer")
        if not 0 <= count <= MAX_INSTANCES:
            return self.error(400, f"numInstances must be between 0 and {MAX_INSTANCES}")
        details = service["serviceDetails"]
        if not details.get("autoscaling", {}).get("enabled"):  # ignored while autoscaling
            details["numInstances"] = count
            service["updatedAt"] = _iso(self.clock.now().wall)
        return Reply(202)
