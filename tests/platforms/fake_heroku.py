"""A fake Heroku Platform API (formation endpoints) following the published schema and docs.

Shapes follow Heroku's ``schema.json`` (copy in ``tests/data/``); behaviour follows the Platform
API reference as summarised in the project's research notes:

- ``Accept: application/vnd.heroku+json; version=3`` is required (406 ``not_acceptable``), and
  ``Authorization: Bearer <token>`` (401 ``unauthorized``);
- a per-account pool of 4,500 calls refilled at 75 a minute, ``RateLimit-Remaining`` on every
  answer, 429 ``rate_limit`` when empty; ``GET /account/rate-limits`` is free;
- ``GET /apps/{app}/formation[/{type}]``; ``PATCH /apps/{app}/formation`` with ``updates``
  (answers the whole formation) and ``PATCH /apps/{app}/formation/{type}``; quantities as int
  or numeric string (absolute, or ``+N``/``-N`` as the CLI sends);
- ``GET /apps/{app}/dynos``: one dyno per instance of the formation (``web.1``, ``web.2``...),
  ``starting`` for ``dyno_boot_s`` seconds after it is added, then ``up``; a downscale stops
  the highest-numbered; paged by ``Range: id ..; max=N`` (200 a page, at most 1,000), a
  truncated page answered 206 with ``Next-Range``;
- 404 ``not_found`` for an unknown app or process type; 422 ``cannot_run_above_limit`` past the
  size's limit (Eco/Basic: 1 per type; Performance/Private/Shield: 10; others: 100); 422 while
  a release phase or preboot runs (``releasing = True``).

Error ``message`` texts for the 422s are modelled on messages users have reported, not verified
against the live API.

Use (from another test package, with ``tests/`` on ``sys.path`` as pytest puts it)::

    from tests.platforms.fake_heroku import FakeHeroku

    with FakeHeroku(token="t0ken-123456", formation={"web": 2, "worker": 0}) as fake:
        env = {"HEROKU_API_URL": fake.url, "HEROKU_API_TOKEN": fake.token,
               "HEROKU_APP_NAME": fake.app, ...}
        fake.dyno_boot_s = 30.0          # new dynos are `starting` this long, then `up`
        fake.dyno_state("web", 2, "crashed")
        fake.fail(503, times=2)          # or 429, 422...; method=/path= narrow it
        fake.slow(1.0, method="PATCH")   # applied, answered late
        fake.drop(apply=True)            # applied, connection closed without an answer
        fake.chaos(0.1, seed=1)          # random faults from now on; fake.calm() stops them
        fake.releasing = True            # formation changes get the preboot 422
        fake.pool = 0                    # the account's rate-limit pool is empty
        ...
        fake.writes(), fake.journal      # what was sent and answered
        fake.quantity("web"), fake.set_quantity("web", 5)
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from autoscaler.clock import Clock

from .fakeserver import Call, FakeServer, Reply

ACCEPT = "application/vnd.heroku+json; version=3"
POOL, REFILL_PER_S = 4500.0, 75.0 / 60.0
_LIMITS = {"eco": 1, "basic": 1, "performance": 10, "private": 10, "shield": 10}
_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    406: "not_acceptable",
    409: "conflict",
    422: "invalid_params",
    429: "rate_limit",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
}
_QUANTITY = re.compile(r"^[+-]?\d+$")
_RANGE = re.compile(r"^id\s*(?:\](?P<after>[^.;\s]+))?\s*\.\.\s*(?:;\s*max=(?P<max>\d+))?;?$")
PAGE, MAX_PAGE = 200, 1000
PREBOOT_MESSAGE = (
    "Cannot change formation for a preboot app until release phase and preboot complete."
)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeHeroku(FakeServer):
    """One Heroku account holding one app. ``formation`` maps process type -> quantity."""

    name = "heroku"

    def __init__(
        self,
        *,
        token: str = "fake-heroku-token-0123456789",
        app: str = "my-app",
        formation: dict[str, int] | None = None,
        sizes: dict[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        self.token = token
        self.app = app
        self.app_id = str(uuid.UUID(int=1))
        self.releasing = False  # a release phase or preboot is running: formation changes 422
        self.pool = POOL
        self._pool_at = self.clock.now().mono
        now = self.clock.now().wall
        self.formation: dict[str, dict[str, Any]] = {}
        for i, (kind, quantity) in enumerate((formation or {"web": 1, "worker": 0}).items()):
            size = (sizes or {}).get(kind, "Standard-1X")
            self.formation[kind] = {
                "app": {"id": self.app_id, "name": app},
                "command": f"bin/{kind}",
                "created_at": _iso(now),
                "dyno_size": {"id": str(uuid.UUID(int=100 + i)), "name": size},
                "id": str(uuid.UUID(int=1000 + i)),
                "quantity": quantity,
                "size": size,
                "type": kind,
                "updated_at": _iso(now),
            }
        self.dyno_boot_s = 0.0  # seconds a new dyno stays `starting`
        self.dynos: dict[str, list[dict[str, Any]]] = {k: [] for k in self.formation}
        self._serial = 0
        for kind in self.formation:
            self._sync_dynos(kind, booted=True)

    def quantity(self, kind: str) -> int:
        with self.lock:
            return int(self.formation[kind]["quantity"])

    def set_quantity(self, kind: str, quantity: int) -> None:
        """A change made by someone else (a human, another tool)."""
        with self.lock:
            self.formation[kind]["quantity"] = quantity
            self.formation[kind]["updated_at"] = _iso(self.clock.now().wall)
            self._sync_dynos(kind)

    def _sync_dynos(self, kind: str, *, booted: bool = False) -> None:
        """Start or stop dynos until ``kind`` runs its quantity (highest-numbered stop first)."""
        dynos = self.dynos[kind]
        quantity = int(self.formation[kind]["quantity"])
        now = self.clock.now()
        del dynos[quantity:]
        while len(dynos) < quantity:
            self._serial += 1
            row = self.formation[kind]
            dynos.append(
                {
                    "attach_url": None,
                    "command": row["command"],
                    "created_at": _iso(now.wall),
                    "id": str(uuid.UUID(int=10_000 + self._serial)),
                    "name": f"{kind}.{len(dynos) + 1}",
                    "release": {"id": str(uuid.UUID(int=2)), "version": 1},
                    "app": {"id": self.app_id, "name": self.app},
                    "size": row["size"],
                    "state": "up" if booted else "starting",
                    "type": kind,
                    "updated_at": _iso(now.wall),
                    "_up_at": now.mono if booted else now.mono + self.dyno_boot_s,
                }
            )

    def dyno_state(self, kind: str, number: int, state: str) -> None:
        """Set dyno ``kind.number``'s state (``crashed``, ``down``, ``up``...) from now on."""
        with self.lock:
            dyno = self.dynos[kind][number - 1]
            dyno["state"], dyno["_up_at"] = state, float("inf")

    def _dyno_list(self, call: Call) -> Reply:
        now = self.clock.now().mono
        listed = []
        for kind in self.dynos:
            for dyno in self.dynos[kind]:
                if dyno["state"] == "starting" and now >= dyno["_up_at"]:
                    dyno["state"] = "up"
                listed.append({k: v for k, v in dyno.items() if not k.startswith("_")})
        listed.sort(key=lambda d: d["id"])
        asked = _RANGE.match(call.headers.get("range", "id ..").strip())
        if asked is None:
            return self.error(400, "Invalid Range header.")
        size = min(int(asked["max"] or PAGE), MAX_PAGE)
        if asked["after"]:
            listed = [d for d in listed if d["id"] > asked["after"]]
        if len(listed) <= size:
            return Reply(200, listed)
        page = listed[:size]
        reply = Reply(206, page)
        reply.headers["Next-Range"] = f"id ]{page[-1]['id']}..; max={size}"
        return reply

    def writes(self) -> list[Call]:
        return self.calls("PATCH")

    def error(self, status: int, message: str | None = None, **extra: Any) -> Reply:
        body = {
            "id": _IDS.get(status, "error"),
            "message": message or f"Injected error {status}.",
            "url": "https://devcenter.heroku.com/articles/platform-api-reference",
            **extra,
        }
        return Reply(status, body)

    def _take_token(self, call: Call) -> bool:
        now = self.clock.now().mono
        self.pool = min(POOL, self.pool + (now - self._pool_at) * REFILL_PER_S)
        self._pool_at = now
        if call.path == "/account/rate-limits":
            return True
        if self.pool < 1.0:
            return False
        self.pool -= 1.0
        return True

    def route(self, call: Call) -> Reply:
        reply = self._route(call)
        reply.headers["RateLimit-Remaining"] = str(int(self.pool))
        reply.headers["Request-Id"] = str(uuid.uuid4())
        return reply

    def _route(self, call: Call) -> Reply:
        if ACCEPT not in call.headers.get("accept", ""):
            return self.error(
                406,
                "Please specify a version along with Heroku's API MIME type. "
                f"For example, `Accept: {ACCEPT}`.",
            )
        if call.headers.get("authorization") != f"Bearer {self.token}":
            return self.error(401, "Invalid credentials provided.")
        if not self._take_token(call):
            return self.error(429, "Your account reached the API rate limit")
        parts = call.path.split("?")[0].strip("/").split("/")
        if parts == ["account", "rate-limits"] and call.method == "GET":
            return Reply(200, {"remaining": int(self.pool)})
        if len(parts) < 3 or parts[0] != "apps" or parts[2] not in ("formation", "dynos"):
            return self.error(404, "Not found.")
        if parts[1] not in (self.app, self.app_id):
            return self.error(404, "Couldn't find that app.")
        if parts[2] == "dynos":
            if len(parts) != 3 or call.method != "GET":
                return self.error(404, "Not found.")
            return self._dyno_list(call)
        kind = parts[3] if len(parts) == 4 else None
        if kind is not None and kind not in self.formation:
            return self.error(404, f"Couldn't find that process type ({kind}).")
        if call.method == "GET":
            if kind is None:
                return Reply(200, list(self.formation.values()))
            return Reply(200, self.formation[kind])
        if call.method != "PATCH":
            return self.error(405, "Method not allowed.")
        if kind is not None:
            updates = [{**(call.body if isinstance(call.body, dict) else {}), "type": kind}]
        elif isinstance(call.body, dict) and isinstance(call.body.get("updates"), list):
            updates = call.body["updates"]
        else:
            return self.error(400, "Invalid request: updates is required.")
        failure = self._apply(updates)
        if failure is not None:
            return failure
        if kind is not None:
            return Reply(200, self.formation[kind])
        return Reply(200, list(self.formation.values()))

    def _apply(self, updates: list[Any]) -> Reply | None:
        """Validate every update, then apply all of them (or none)."""
        planned: dict[str, int] = {}
        for update in updates:
            kind = update.get("type") if isinstance(update, dict) else None
            if kind not in self.formation:
                return self.error(404, f"Couldn't find that process type ({kind}).")
            raw = update.get("quantity", self.formation[kind]["quantity"])
            if isinstance(raw, bool) or not (
                isinstance(raw, int) or (isinstance(raw, str) and _QUANTITY.match(raw))
            ):
                return self.error(422, f"Invalid quantity: {raw!r}.")
            current = int(self.formation[kind]["quantity"])
            quantity = current + int(raw) if isinstance(raw, str) and raw[0] in "+-" else int(raw)
            if quantity < 0:
                return self.error(422, "Quantity must be zero or more.")
            size = str(self.formation[kind]["size"])
            limit = _LIMITS.get(size.split("-", maxsplit=1)[0].lower(), 100)
            if quantity > limit:
                return self.error(
                    422,
                    f"Cannot run more than {limit} {size} size dynos per process type.",
                    id="cannot_run_above_limit",
                    limit=limit,
                    size=quantity,
                )
            planned[kind] = quantity
        if self.releasing:
            return self.error(422, PREBOOT_MESSAGE)
        now = _iso(self.clock.now().wall)
        for kind, quantity in planned.items():
            if self.formation[kind]["quantity"] != quantity:
                self.formation[kind]["quantity"] = quantity
                self.formation[kind]["updated_at"] = now
                self._sync_dynos(kind)
        return None
