"""A local fake of Fly.io's Machines API (``/v1/apps/{app}/machines``) over real HTTP.

It follows the published shapes (the Machines API docs and fly-go's ``Machine`` type): machines
carry ``config.metadata.fly_process_group``, ``state``, ``host_status``, ``image_ref``; errors are
``{"error": "..."}``; a bad token gets ``401 {"error": "Authenticate: token validation error"}``.
It enforces the documented per-action, per-machine rate limit (1 request/s with a burst of 3;
Get Machine 5/s, burst 10) and answers 429 beyond it (the docs do not say how a breach is
signalled: 429 is an assumption), counting such answers in ``limit_hits``.

Leases follow the Machines API docs (``reference/machines/lease*`` in superfly/docs) and
fly-go's ``flaps`` client: ``POST /machines/{id}/lease`` with ``{"ttl": seconds,
"description": ...}`` (or ``?ttl=``) answers ``{"status": "success", "data": {"nonce",
"expires_at", "owner", "description", "version"}}`` where ``version`` is the machine's
``instance_id``; the ``fly-machine-lease-nonce`` header then goes on the calls made under it and
on ``DELETE /machines/{id}/lease``, which releases it. ``hold_lease`` plays another client (a
deploy) holding one. Every lease call and the nonce sent with every action are in the journal.

Assumptions where the docs are silent: starting a machine that is already started answers
``412 {"error": "failed_precondition: machine still active, refusing to start"}``; stopping a
stopped machine is a no-op 200; ``starting`` becomes ``started`` after ``boot_delay`` seconds of
the fake's clock; a lease asked for while another client holds one, and an action on a leased
machine without its nonce, answer ``409 {"error": "lease currently held by <owner>, expires at
<epoch>"}`` (fly-go retries 409 on acquisition; flyctl's deploy treats "lease currently held
by" as unrecoverable); releasing with a wrong nonce answers 409, with no lease 404 ``lease not
found`` (flyctl ignores that one). Creating a machine whose ``mounts`` name a volume another
machine has attached answers 400.

Faults (``fail``, ``slow``, ``drop``, ``chaos``) come from the shared ``FakeServer`` base.
"""

from __future__ import annotations

import datetime
import itertools
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from autoscaler.clock import Clock
from tests.platforms.fakeserver import Call, FakeServer, Reply

_PATH = re.compile(r"^/v1/apps/(?P<app>[^/]+)/machines(?:/(?P<id>[^/]+)(?:/(?P<action>[a-z]+))?)?$")
STARTABLE = ("stopped", "suspended", "created")
NONCE = "fly-machine-lease-nonce"
OWNER = "autoscaler-test@example.com"


@dataclass
class HeldLease:
    nonce: str
    owner: str
    description: str
    expires_at: float  # wall clock


class FakeFly(FakeServer):
    name = "fly"

    def __init__(
        self,
        *,
        app: str = "demo",
        token: str = "fly-test-token",
        clock: Clock | None = None,
        boot_delay: float = 0.0,
    ) -> None:
        super().__init__(clock)
        self.app = app
        self.auth = token if token.startswith(("FlyV1 ", "Bearer ")) else f"Bearer {token}"
        self.boot_delay = boot_delay
        self.machines: dict[str, dict[str, Any]] = {}
        self.limit_hits = 0  # requests refused by the documented rate limit
        self._ready_at: dict[str, float] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._ids = itertools.count(0x148E1D3B2C5701)
        self._nonces = itertools.count(0x5C35F65C9F95)
        self.leases: dict[str, HeldLease] = {}
        self.lease_conflicts = 0  # 409s answered because another client held the lease

    # -- set-up and inspection ------------------------------------------------------------

    def add(self, group: str | None = "app", *, state: str = "started", n: int = 1,
            region: str = "iad", host_status: str = "ok", legacy_group: bool = False,
            standby_for: str | None = None, volume: str | None = None) -> list[str]:  # fmt: skip
        """Add ``n`` machines to ``group``; returns their ids (ascending).

        ``group=None``: no process group in the metadata; ``legacy_group``: the group under the
        legacy ``process_group`` key; ``standby_for``: a standby for that machine, as ``fly
        deploy`` makes one (``standbys`` and ``FLY_STANDBY_FOR``); ``volume``: the machines
        mount that volume id (with ``n > 1``, ``<volume>_<i>``).
        """
        with self.lock:
            ids = []
            for i in range(n):
                config = self._config(group, legacy=legacy_group)
                if standby_for is not None:
                    config["standbys"] = [standby_for]
                    config["env"] = {"FLY_STANDBY_FOR": standby_for, "PORT": "8080"}
                if volume is not None:
                    name = volume if n == 1 else f"{volume}_{i}"
                    config["mounts"] = [{"volume": name, "path": "/data", "name": "data"}]
                ids.append(self._new(config, region, state, host_status))
            return ids

    def hold_lease(self, machine_id: str, owner: str = "deploy@example.com",
                   ttl: float = 60.0) -> str:  # fmt: skip
        """Another client (a deploy) takes the machine's lease; returns its nonce."""
        with self.lock:
            nonce = f"{next(self._nonces):x}"
            wall = self.clock.now().wall
            self.leases[machine_id] = HeldLease(nonce, owner, "fly deploy", wall + ttl)
            return nonce

    def deploy(self, machine_id: str) -> None:
        """A deploy updated the machine: a new ``instance_id`` (the lease's ``version``)."""
        with self.lock:
            machine = self.machines[machine_id]
            machine["instance_id"] = f"01JE{next(self._ids):X}"
            machine["updated_at"] = self._stamp()

    def started(self, group: str) -> int:
        with self.lock:
            self._settle()
            return sum(
                1
                for m in self.machines.values()
                if _group(m) == group and m["state"] in ("started", "starting")
            )

    def total(self, group: str) -> int:
        with self.lock:
            return sum(
                1
                for m in self.machines.values()
                if _group(m) == group and m["state"] != "destroyed"
            )

    def writes(self) -> list[Call]:
        return [c for c in self.calls() if c.method in ("POST", "DELETE")]

    # -- Fly's shapes -----------------------------------------------------------------------

    def _stamp(self) -> str:
        wall = self.clock.now().wall
        return (
            datetime.datetime.fromtimestamp(wall, datetime.UTC).isoformat().replace("+00:00", "Z")
        )

    def _config(self, group: str | None, *, legacy: bool = False) -> dict[str, Any]:
        metadata = {"fly_platform_version": "v2", "fly_release_id": "Xy9RZ3",
                    "fly_release_version": "7"}  # fmt: skip
        if group is not None:
            metadata["process_group" if legacy else "fly_process_group"] = group
        return {
            "image": f"registry.fly.io/{self.app}:deployment-01JD7Q",
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
            "metadata": metadata,
            "restart": {"policy": "on-failure", "max_retries": 10},
            "services": [{"protocol": "tcp", "internal_port": 8080, "autostop": "off"}],
        }

    def _new(self, config: dict[str, Any], region: str, state: str, host: str = "ok") -> str:
        machine_id = f"{next(self._ids):x}"
        now = self._stamp()
        self.machines[machine_id] = {
            "id": machine_id,
            "name": f"machine-{machine_id[-4:]}",
            "state": state,
            "region": region,
            "instance_id": f"01JD7Q{machine_id[-6:].upper()}",
            "private_ip": f"fdaa:0:1:a7b:1::{machine_id[-4:]}",
            "config": config,
            "image_ref": {
                "registry": "registry.fly.io",
                "repository": self.app,
                "tag": "deployment-01JD7Q",
                "digest": "sha256:5b0f8ea3d2c1a9e8f7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4",
                "labels": {},
            },
            "created_at": now,
            "updated_at": now,
            "events": [],
            "checks": [],
            "host_status": host,
        }
        return machine_id

    def error(self, status: int) -> Reply:
        text = "rate limit exceeded" if status == 429 else f"injected {status}"
        return Reply(status, {"error": text})

    # -- behaviour --------------------------------------------------------------------------

    def _settle(self) -> None:
        now = self.clock.now().mono
        for machine_id, ready in list(self._ready_at.items()):
            if ready <= now:
                self.machines[machine_id]["state"] = "started"
                del self._ready_at[machine_id]

    def _allowed(self, action: str, key: str) -> bool:
        rate, burst = (5.0, 10.0) if action == "get" else (1.0, 3.0)
        now = self.clock.now().mono
        tokens, at = self._buckets.get((action, key), (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[(action, key)] = (tokens, now)
            return False
        self._buckets[(action, key)] = (tokens - 1.0, now)
        return True

    def route(self, call: Call) -> Reply:
        if call.headers.get("authorization") != self.auth:
            return Reply(401, {"error": "Authenticate: token validation error"})
        match = _PATH.match(call.path.split("?")[0])
        if match is None:
            return Reply(404, {"error": "404 page not found"})
        if match["app"] != self.app:
            return Reply(404, {"error": "app not found"})
        self._settle()
        machine_id, action = match["id"], match["action"]
        if machine_id is None:
            if call.method == "GET":
                live = [m for m in self.machines.values() if m["state"] != "destroyed"]
                return Reply(200, live)
            if call.method == "POST":
                return self._limited("create", self.app) or self._create(call.body)
            return Reply(405, {"error": "method not allowed"})
        machine = self.machines.get(machine_id)
        if machine is None or machine["state"] == "destroyed":
            return Reply(404, {"error": "machine not found"})
        if call.method == "GET" and action is None:
            return self._limited("get", machine_id) or Reply(200, machine)
        if call.method == "DELETE" and action is None:
            limited = self._limited("destroy", machine_id)
            if limited:
                return limited
            machine["state"] = "destroyed"
            return Reply(200, {"ok": True})
        if action == "lease":
            return self._lease(call, machine)
        if call.method == "POST" and action in ("start", "stop", "suspend"):
            return (
                self._limited(action, machine_id)
                or self._leased_elsewhere(call, machine_id)
                or self._transition(machine, action)
            )
        return Reply(404, {"error": "404 page not found"})

    # -- leases -----------------------------------------------------------------------------

    def _current_lease(self, machine_id: str) -> HeldLease | None:
        lease = self.leases.get(machine_id)
        if lease is not None and lease.expires_at <= self.clock.now().wall:
            del self.leases[machine_id]
            return None
        return lease

    def _held_text(self, lease: HeldLease) -> str:
        return f"lease currently held by {lease.owner}, expires at {int(lease.expires_at)}"

    def _leased_elsewhere(self, call: Call, machine_id: str) -> Reply | None:
        lease = self._current_lease(machine_id)
        if lease is None or call.headers.get(NONCE) == lease.nonce:
            return None
        self.lease_conflicts += 1
        return Reply(409, {"error": self._held_text(lease)})

    def _lease(self, call: Call, machine: dict[str, Any]) -> Reply:
        machine_id = machine["id"]
        lease = self._current_lease(machine_id)
        if call.method == "GET":
            if lease is None:
                return Reply(404, {"error": "lease not found"})
            return Reply(200, self._lease_body(lease, machine))
        if call.method == "DELETE":
            if lease is None:
                return Reply(404, {"error": "lease not found"})
            if call.headers.get(NONCE) != lease.nonce:
                self.lease_conflicts += 1
                return Reply(409, {"error": self._held_text(lease)})
            del self.leases[machine_id]
            return Reply(200, {})
        if call.method != "POST":
            return Reply(405, {"error": "method not allowed"})
        limited = self._limited("lease", machine_id)
        if limited:
            return limited
        body = call.body if isinstance(call.body, dict) else {}
        query = urllib.parse.parse_qs(call.path.partition("?")[2])
        ttl = float(body.get("ttl") or (query.get("ttl") or ["30"])[0])
        wall = self.clock.now().wall
        if lease is not None:
            if call.headers.get(NONCE) != lease.nonce:
                self.lease_conflicts += 1
                return Reply(409, {"error": self._held_text(lease)})
            lease.expires_at = wall + ttl  # a refresh by the holder
            return Reply(200, self._lease_body(lease, machine))
        lease = HeldLease(f"{next(self._nonces):x}", OWNER, str(body.get("description") or ""),
                          wall + ttl)  # fmt: skip
        self.leases[machine_id] = lease
        return Reply(200, self._lease_body(lease, machine))

    def _lease_body(self, lease: HeldLease, machine: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "success",
            "data": {
                "nonce": lease.nonce,
                "expires_at": int(lease.expires_at),
                "owner": lease.owner,
                "description": lease.description,
                "version": machine["instance_id"],
            },
        }

    def _limited(self, action: str, key: str) -> Reply | None:
        if self._allowed(action, key):
            return None
        self.limit_hits += 1
        return Reply(429, {"error": "rate limit exceeded"})

    def _transition(self, machine: dict[str, Any], action: str) -> Reply:
        previous = machine["state"]
        if action == "start":
            if previous not in STARTABLE:
                return Reply(
                    412, {"error": "failed_precondition: machine still active, refusing to start"}
                )
            if self.boot_delay > 0:
                machine["state"] = "starting"
                self._ready_at[machine["id"]] = self.clock.now().mono + self.boot_delay
            else:
                machine["state"] = "started"
            machine["updated_at"] = self._stamp()
            return Reply(200, {"previous_state": previous})
        if previous in ("started", "starting"):
            machine["state"] = "stopped" if action == "stop" else "suspended"
            self._ready_at.pop(machine["id"], None)
            machine["updated_at"] = self._stamp()
        return Reply(200, {"ok": True})

    def _create(self, body: Any) -> Reply:
        config = body.get("config") if isinstance(body, dict) else None
        if not isinstance(config, dict) or not config.get("image"):
            return Reply(400, {"error": "invalid config: image is required"})
        attached = {
            mount.get("volume"): m["id"]
            for m in self.machines.values()
            if m["state"] != "destroyed"
            for mount in m["config"].get("mounts") or []
        }
        for mount in config.get("mounts") or []:
            if mount.get("volume") in attached:
                owner = attached[mount.get("volume")]
                return Reply(400, {"error": f"volume {mount.get('volume')} is attached to {owner}"})
        state = "stopped" if body.get("skip_launch") else "started"
        machine_id = self._new(config, str(body.get("region") or "iad"), state)
        return Reply(200, self.machines[machine_id])


def _group(machine: dict[str, Any]) -> str:
    """fly-go's ``ProcessGroup()``: ``fly_process_group``, else ``process_group``, else ''."""
    metadata = machine["config"].get("metadata") or {}
    return str(metadata.get("fly_process_group") or metadata.get("process_group") or "")
