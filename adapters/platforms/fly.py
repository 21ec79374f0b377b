"""Fly.io: the Machines API (``FLY_API_URL``, default ``https://api.machines.dev``).

Fly has no instance count to set. A managed process is a Fly *process group* (fly-go's
``ProcessGroup()``: the machine config's ``metadata.fly_process_group``, falling back to the
legacy ``process_group``, else none) and its quantity is the number of its machines that are
started (or starting). A machine without a group belongs to no managed process.

- A *standby* (a machine whose config lists ``standbys``, or whose env has ``FLY_STANDBY_FOR``:
  Fly starts it only when the machine it stands in for fails) is not capacity: it is never
  counted, started, stopped or cloned from.
- Scale up starts stopped (or suspended, or never-started) machines of the group, lowest id
  first. With ``AUTOSCALER_FLY_CLONE=true`` and not enough of them, it clones the group's first
  machine (image pinned to its exact digest) while the group holds fewer than the process's MAX
  machines, the way ``fly scale count`` copies one: ``standbys`` cleared, ``FLY_STANDBY_FOR``
  dropped. A group whose machines mount a volume is not cloned (a copy needs a volume of its
  own, which this adapter does not create); the shortfall says to create the machines with
  ``fly scale count``, which gives each one its volume. Without cloning, the shortfall is a
  non-retryable ``Rejected`` that says what to do.
- Every start and stop is made under a machine *lease*, as flyctl does: ``POST
  /machines/{id}/lease`` (a short TTL), the action with the ``fly-machine-lease-nonce`` header,
  then ``DELETE /machines/{id}/lease`` with the nonce. A lease held by someone else (a deploy)
  answers 409: the machine is left alone and the call is a retryable ``Rejected`` that says a
  deploy or another client holds it; an action answered 409/412 is reported the same way.
- Scale down stops started machines, highest id first. Nothing is ever destroyed: this module
  sends no DELETE at all, so the last machine of a group always survives.
- Writes are not retried in a loop: the first failed start/stop/create ends the call. If some
  machines already changed, ``PartialScale`` (a ``WriteUnknown``) says how many; the loop re-reads
  the formation before deciding again. Creates are never re-sent, even on a 5xx.
- Fly limits each action on each machine to 1 request/s (burst 3): every (action, machine) pair
  has its own token bucket, and so do creates. The list call has its own bucket too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from autoscaler.clock import Clock, SystemClock
from autoscaler.configkit import (
    Bool,
    DaemonConfig,
    EnvSettings,
    NoSettings,
    PlatformAdapter,
    Text,
    Url,
    global_only,
    process_prefix,
    read,
)
from autoscaler.model import Formation
from autoscaler.platforms._http import CallBudget, Http, error_message, iso_seconds
from autoscaler.ports import ConfigError, Conflict, PlatformError, Rejected, WriteUnknown
from autoscaler.redact import redact, register_secret

CLONE_VAR = "AUTOSCALER_FLY_CLONE"
#: fly-go's ``ProcessGroup()`` of a machine with neither metadata key: no group
NO_GROUP = ""
#: the header that proves a lease (flyctl, fly-go ``flaps.NonceHeader``)
NONCE_HEADER = "fly-machine-lease-nonce"
#: seconds a lease is asked for: enough for one action, short if the release is lost
LEASE_TTL = 30
#: the metadata key whose value is the owner's description in a lease
LEASE_DESCRIPTION = "queue-autoscaler"
#: states that count as a running instance
ON = frozenset({"started", "starting"})
#: states a machine can be started from, in order of preference
STARTABLE = ("stopped", "suspended", "created")
#: transient states that mean a deploy (``fly deploy``, ``fly machine update``) is under way
DEPLOYING = frozenset({"replacing", "updating", "launching"})
#: Fly's documented per-action, per-machine limit: 1 request/s with a burst of 3
ACTION_RATE = 1.0
ACTION_BURST = 3


class PartialScale(WriteUnknown):
    """Some machines changed state, then a call failed. ``changed`` counts the machines that
    did change per process (started or cloned: positive; stopped: negative)."""

    def __init__(self, message: str, changed: Mapping[str, int]) -> None:
        super().__init__(message)
        self.changed = dict(changed)


# ---- configuration (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class FlyConfig:
    api_url: str
    token: str
    app: str
    clone: bool
    maxima: Mapping[str, int] = field(default_factory=dict)  # process -> MAX (clone ceiling)
    timeout: float = 10.0


class FlySettings(EnvSettings):
    """The Fly.io platform's variables."""

    model_config = SettingsConfigDict(env_prefix="FLY_")

    api_token: Text = Field(
        description="a token that may start and stop machines (`fly tokens create deploy`)"
    )
    app_name: Text = Field(description="the app whose machines are scaled")
    api_url: Url = Field(
        "https://api.machines.dev", description="the Machines API (tests point elsewhere)"
    )
    clone: Bool = Field(
        False,
        validation_alias=CLONE_VAR,
        description="may create machines (copies of a group's newest) when no stopped one is "
        "left; see the Fly.io section",
    )


def parse(
    config: DaemonConfig,
    own: FlySettings | None = None,
) -> FlyConfig:
    """Fly's settings for the adapter; raise ``ConfigError`` naming each missing or bad one."""
    own = own or read(FlySettings, config.env)
    return FlyConfig(
        api_url=own.api_url,
        token=own.api_token,
        app=own.app_name,
        clone=own.clone,
        maxima={name: p.max for name, p in config.processes.items()},
        timeout=min(10.0, config.tick_timeout),
    )


def authorization(token: str) -> str:
    """The ``Authorization`` value: tokens that carry their scheme (``FlyV1 fm2_...`` from
    ``fly tokens create``) are sent as they are, anything else as a Bearer token."""
    token = token.strip()
    if token.startswith(("FlyV1 ", "Bearer ")):
        return token
    return f"Bearer {token}"


def secrets_of(token: str) -> list[str]:
    """Every form of the token that could show up in a message (macaroons are comma lists)."""
    bare = token.strip().removeprefix("FlyV1 ").removeprefix("Bearer ").strip()
    return [token, bare, *bare.split(",")]


# ---- machines and plans (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    id: str
    state: str
    group: str
    region: str
    updated_at: float | None
    host_ok: bool
    config: Mapping[str, Any]
    image: str | None  # the exact image reference to clone, digest-pinned when known
    standby: bool = False  # a standby for another machine: never capacity
    version: str | None = None  # ``instance_id``: changes with every update of the machine


def _pinned_image(machine: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    ref = machine.get("image_ref")
    if isinstance(ref, Mapping) and ref.get("repository"):
        image = f"{ref.get('registry') or 'registry.fly.io'}/{ref['repository']}"
        if ref.get("tag"):
            image += f":{ref['tag']}"
        if ref.get("digest"):
            image += f"@{ref['digest']}"
        return image
    plain = config.get("image")
    return plain if isinstance(plain, str) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_machines(body: Any) -> list[Machine]:
    """The machines of a ``GET /v1/apps/{app}/machines`` answer. Raises ``PlatformError`` on an
    answer that is not a list of machines."""
    if not isinstance(body, list):
        raise PlatformError(f"fly: the machine list is not a JSON list ({type(body).__name__})")
    machines = []
    for item in body:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise PlatformError("fly: the machine list holds an entry without an id")
        config = _mapping(item.get("config"))
        metadata = _mapping(config.get("metadata"))
        group = metadata.get("fly_process_group") or metadata.get("process_group")
        version = item.get("instance_id")
        machines.append(
            Machine(
                id=item["id"],
                state=str(item.get("state") or "unknown"),
                group=str(group or NO_GROUP),
                region=str(item.get("region") or ""),
                updated_at=iso_seconds(item.get("updated_at")),
                host_ok=item.get("host_status", "ok") == "ok",
                config=config,
                image=_pinned_image(item, config),
                standby=is_standby(config),
                version=version if isinstance(version, str) and version else None,
            )
        )
    return machines


def is_standby(config: Mapping[str, Any]) -> bool:
    """A standby for another machine (``fly deploy`` makes them for groups without services)."""
    standbys = config.get("standbys")
    env = _mapping(config.get("env"))
    return bool(standbys) or bool(env.get("FLY_STANDBY_FOR"))


def in_group(machines: Sequence[Machine], group: str) -> list[Machine]:
    """The group's machines on a healthy host, standbys and destroyed ones left out."""
    return [
        m
        for m in machines
        if m.group == group
        and group != NO_GROUP
        and m.host_ok
        and not m.standby
        and m.state not in ("destroyed", "destroying")
    ]


def standbys_of(machines: Sequence[Machine], group: str) -> int:
    return sum(1 for m in machines if m.group == group and m.standby and m.host_ok)


def clone_refusal(mine: Sequence[Machine]) -> str | None:
    """Why the group cannot be cloned from, or ``None``."""
    if not mine:
        return "no machine to copy"
    if not any(m.image for m in mine):
        return "no machine with a known image to copy"
    if any(m.config.get("mounts") for m in mine):
        return (
            "its machines mount a volume, and a copy needs a volume of its own, which the "
            "autoscaler does not create"
        )
    return None


def formation_of(machines: Sequence[Machine], group: str) -> Formation:
    mine = in_group(machines, group)
    stamps = [m.updated_at for m in mine if m.updated_at is not None]
    return Formation(
        quantity=sum(1 for m in mine if m.state in ON),
        updated_at=max(stamps) if stamps else None,
        deploying=any(m.state in DEPLOYING for m in mine),
        ready=sum(1 for m in mine if m.state == "started"),
    )


@dataclass(frozen=True)
class Plan:
    """What to do for one group: machine ids to start or stop, how many clones to create, and
    how many instances cannot be provided at all (``shortfall``)."""

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    clones: int = 0
    shortfall: int = 0


def plan(machines: Sequence[Machine], group: str, target: int, *, clone_up_to: int) -> Plan:
    """The calls that take ``group`` to ``target`` started machines. ``clone_up_to`` is the most
    machines the group may hold after cloning (0: never clone)."""
    mine = in_group(machines, group)
    running = sorted((m for m in mine if m.state in ON), key=lambda m: m.id)
    if target < len(running):
        # stop machines still booting (they serve nothing yet) before started ones; the highest
        # ids first
        by_pref = sorted(running, key=lambda m: (m.state == "starting", m.id), reverse=True)
        return Plan(stop=tuple(m.id for m in by_pref[: len(running) - target]))
    need = target - len(running)
    startable = sorted(
        (m for m in mine if m.state in STARTABLE), key=lambda m: (STARTABLE.index(m.state), m.id)
    )
    start = tuple(m.id for m in startable[:need])
    missing = need - len(start)
    clones = 0
    if missing > 0 and clone_refusal(mine) is None:
        clones = max(0, min(missing, clone_up_to - len(mine)))
    return Plan(start=start, clones=clones, shortfall=missing - clones)


def clone_request(machines: Sequence[Machine], group: str) -> dict[str, Any]:
    """The create body for a copy of the group's first machine, its image pinned, made the way
    flyctl's ``scale count`` makes one: no ``standbys``, no ``FLY_STANDBY_FOR``. A group whose
    machines mount a volume is never cloned (``clone_refusal``)."""
    mine = in_group(machines, group)
    refusal = clone_refusal(mine)
    if refusal is not None:
        raise Rejected(f"fly: cannot clone a machine of {group}: {refusal}", retryable=False)
    source = min((m for m in mine if m.image), key=lambda m: m.id)
    config = dict(source.config)
    config["image"] = source.image
    config.pop("standbys", None)
    env = dict(_mapping(config.get("env")))
    if "FLY_STANDBY_FOR" in env:
        del env["FLY_STANDBY_FOR"]
        config["env"] = env
    return {"config": config, "region": source.region}


# ---- the adapter ------------------------------------------------------------------------------


class FlyPlatform:
    """The ``Platform`` for one Fly app."""

    name = "fly"

    def __init__(
        self,
        config: FlyConfig,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        for secret in secrets_of(config.token):
            register_secret(secret)
        self.config = config
        self.clock = clock or SystemClock()
        self._budgets: dict[tuple[str, str], CallBudget] = {}
        self._transport = transport
        self.http = self._client(self._budget("list", "app", 5.0, 10))
        # creates are never re-sent: a second create after a 5xx could make a second machine
        self._create_http = self._client(self._budget("create", "app"), retries=0)

    def _client(self, budget: CallBudget, retries: int = 2) -> Http:
        return Http(
            "fly",
            f"{self.config.api_url.rstrip('/')}/v1/apps/{self.config.app}",
            {"Authorization": authorization(self.config.token), "Accept": "application/json"},
            budget=budget,
            timeout=self.config.timeout,
            retries=retries,
            clock=self.clock,
            transport=self._transport,
        )

    def _budget(
        self, action: str, key: str, rate: float = ACTION_RATE, burst: int = ACTION_BURST
    ) -> CallBudget:
        budget = self._budgets.get((action, key))
        if budget is None:
            budget = CallBudget(f"fly {action} {key}", rate, 1.0, burst=burst, clock=self.clock)
            self._budgets[(action, key)] = budget
        return budget

    # ---- reads ----

    def machines(self) -> list[Machine]:
        return self._machines(self.http.request("GET", "/machines"))

    def _machines(self, response: httpx.Response) -> list[Machine]:
        if response.status_code != 200:
            raise self._error("GET /machines", response, app_call=True)
        try:
            body = response.json()
        except ValueError:
            raise PlatformError("fly: GET /machines: the answer is not JSON") from None
        return parse_machines(body)

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        machines = self.machines()
        return {p: formation_of(machines, p) for p in processes}

    def check(self, processes: Sequence[str]) -> str:
        response = self.http.request("GET", "/machines")
        if response.status_code in (401, 403, 404):
            culprit = "FLY_APP_NAME" if response.status_code == 404 else "FLY_API_TOKEN"
            raise ConfigError({culprit: str(self._error("GET /machines", response, app_call=True))})
        machines = self._machines(response)
        groups = sorted({m.group or "(no group)" for m in machines})
        missing = [p for p in processes if not in_group(machines, p)]
        if missing:
            raise ConfigError(
                {
                    "AUTOSCALER_PROCESSES": (
                        f"fly app {self.config.app!r} has no machine in process group(s) "
                        f"{', '.join(missing)} (its groups: {', '.join(groups) or 'none'})"
                    )
                }
            )
        counts = ", ".join(
            f"{p} {formation_of(machines, p).quantity}/{len(in_group(machines, p))} started"
            + (f" (+{n} standby, not counted)" if (n := standbys_of(machines, p)) else "")
            for p in processes
        )
        return f"fly app {self.config.app}: {counts} (clone {'on' if self.config.clone else 'off'})"

    # ---- writes ----

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        machines = self.machines()
        now = {p: formation_of(machines, p).quantity for p in targets}
        drift = {p: q for p, q in now.items() if p in expected and q != expected[p]}
        if drift:
            raise Conflict(
                "fly: started machines changed since the decision: "
                + ", ".join(f"{p} is {q} (expected {expected[p]})" for p, q in drift.items())
            )
        plans = {
            p: plan(
                machines,
                p,
                max(0, target),
                clone_up_to=self.config.maxima.get(p, target) if self.config.clone else 0,
            )
            for p, target in targets.items()
        }
        changed = dict.fromkeys(targets, 0)
        by_id = {m.id: m for m in machines}
        try:
            for p, todo in plans.items():
                for machine_id in todo.start:
                    self._act("start", by_id[machine_id])
                    changed[p] += 1
                for machine_id in todo.stop:
                    self._act("stop", by_id[machine_id])
                    changed[p] -= 1
                for _ in range(todo.clones):
                    self._clone(clone_request(machines, p))
                    changed[p] += 1
        except PlatformError as exc:
            if not any(changed.values()):
                raise
            raise PartialScale(self._summary(targets, now, changed, exc), changed) from None
        short = {p: todo.shortfall for p, todo in plans.items() if todo.shortfall}
        if not short:
            return
        why = "; ".join(self._shortfall_text(machines, p, n) for p, n in short.items())
        if any(changed.values()):
            raise PartialScale(self._summary(targets, now, changed, why), changed)
        raise Rejected(f"fly: {why}", retryable=False)

    def _shortfall_text(self, machines: Sequence[Machine], process: str, missing: int) -> str:
        mine = in_group(machines, process)
        held = len(mine)
        text = f"{process}: {missing} more machine(s) needed, no stopped one left ({held} in group)"
        if not held:
            return f"{text}; create one first (fly scale count {process}=1)"
        refusal = clone_refusal(mine)
        if self.config.clone and refusal is not None:
            return (
                f"{text}; not cloned: {refusal}; create them with fly scale count {process}=N "
                "(it gives each machine a volume)"
            )
        if self.config.clone:
            ceiling = self.config.maxima.get(process, held)
            return f"{text}; clones stop at {process_prefix(process)}MAX={ceiling}"
        return f"{text}; create them (fly scale count {process}=N) or set {CLONE_VAR}=true"

    def _summary(
        self,
        targets: Mapping[str, int],
        before: Mapping[str, int],
        changed: Mapping[str, int],
        cause: object,
    ) -> str:
        parts = [
            f"{p} {before[p]}->{before[p] + changed[p]} of {targets[p]} wanted"
            for p in targets
            if changed[p] or targets[p] != before[p]
        ]
        return redact(f"fly: partly scaled ({', '.join(parts)}), then: {cause}")

    def _pace(self, budget: CallBudget) -> None:
        wait = budget.wait(priority=True)
        if 0 < wait <= 2.0:  # a short wait keeps within Fly's per-action limit; a long one fails
            self.clock.sleep(wait)

    def _act(self, action: str, machine: Machine) -> None:
        """``action`` on ``machine`` under a lease: take it, act with its nonce, release it."""
        nonce = self._lease(machine)
        try:
            budget = self._budget(action, machine.id)
            self._pace(budget)
            path = f"/machines/{machine.id}/{action}"
            response = self.http.request(
                "POST", path, write=True, budget=budget, headers={NONCE_HEADER: nonce}
            )
            if response.status_code != 200:
                raise self._error(f"POST {path}", response)
        finally:
            self._release(machine.id, nonce)

    def _lease(self, machine: Machine) -> str:
        """Take ``machine``'s lease; its nonce. A lease held elsewhere, or a machine changed
        since it was listed, is a retryable ``Rejected`` (nothing was done to it)."""
        budget = self._budget("lease", machine.id)
        self._pace(budget)
        path = f"/machines/{machine.id}/lease"
        body = {"ttl": LEASE_TTL, "description": LEASE_DESCRIPTION}
        # not a write: a lease changes no machine (one lost to a timeout expires by itself)
        response = self.http.request("POST", path, json=body, priority=True, budget=budget)
        if response.status_code != 200:
            raise self._error(f"POST {path}", response)
        data = _lease_data(response)
        nonce = data.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise PlatformError(f"fly: POST {path}: the answer holds no lease nonce")
        version = data.get("version")
        if machine.version and isinstance(version, str) and version and version != machine.version:
            self._release(machine.id, nonce)
            raise Rejected(
                f"fly: machine {machine.id} changed since it was listed (a deploy?); "
                "the formation is re-read next tick",
                retryable=True,
            )
        return nonce

    def _release(self, machine_id: str, nonce: str) -> None:
        """Give the lease back; a failure only means it expires by itself (``LEASE_TTL``)."""
        with contextlib.suppress(PlatformError):
            self.http.request(
                "DELETE",
                f"/machines/{machine_id}/lease",
                priority=True,
                budget=self._budget("release", machine_id),
                headers={NONCE_HEADER: nonce},
            )

    def _clone(self, body: Mapping[str, Any]) -> None:
        budget = self._budget("create", "app")
        self._pace(budget)
        response = self._create_http.request("POST", "/machines", json=body, write=True)
        if response.status_code != 200:
            raise self._error("POST /machines (clone)", response)

    def _error(
        self, what: str, response: httpx.Response, *, app_call: bool = False
    ) -> PlatformError:
        status = response.status_code
        text = f"fly: {what}: {status} {error_message(response)}"
        if status in (401, 403):
            return Rejected(text + " (is FLY_API_TOKEN valid for this app?)", retryable=False)
        if status == 404 and app_call:
            return Rejected(
                text + f" (does FLY_APP_NAME={self.config.app!r} exist?)", retryable=False
            )
        if status in (409, 412):  # a lease held by someone else: a deploy, flyctl, another tool
            return Rejected(
                text + " (the machine is leased by a deploy or another client; left alone, the "
                "formation is re-read next tick)",
                retryable=True,
            )
        if status in (404, 408):  # machine gone, slow host
            return Rejected(text + " (the formation is re-read next tick)", retryable=True)
        if 400 <= status < 500:
            return Rejected(text, retryable=False)
        return PlatformError(text)

    def close(self) -> None:
        self.http.close()
        self._create_http.close()


def _lease_data(response: httpx.Response) -> Mapping[str, Any]:
    """The lease in an answer: ``{"status": ..., "data": {"nonce": ...}}`` as the Machines API
    docs and fly-go's ``MachineLease`` have it, or the bare ``Lease`` of the OpenAPI file."""
    try:
        body = response.json()
    except ValueError:
        return {}
    body = _mapping(body)
    data = _mapping(body.get("data"))
    return data or body


def build(
    config: DaemonConfig,
    own: FlySettings | None = None,
) -> FlyPlatform:
    return FlyPlatform(parse(config, own))


ADAPTER = PlatformAdapter(
    FlySettings, NoSettings, global_only(parse), global_only(build), lambda own, per: own.app_name
)
