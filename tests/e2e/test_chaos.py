"""Chaos: two daemons (the real loop, the real policy, the real Redis lease code) run for a
simulated 75 minutes on a fake clock against one fake platform, with random source failures
(errors, missing, stale, NaN, crashes), platform 429/5xx/timeouts/deploy rejections/drift,
lock-backend outages, leader pauses (also in the middle of a tick), restarts and crashes.

What must hold at every step: quantities within bounds; no downscale written while the writer's
signal for that process was missing, stale or failing; every write comes from the holder of the
current lease; no write inside a Retry-After; API calls within the platform's hourly limit; and
``tick()`` always returns (the daemon never dies). Scenarios 1, 6, 10, 26-31, 35, 39-41, 44.

Once with the Redis lease code on a fake Redis (TTLs on the fake clock), once with the PostgreSQL
lock on the real PostgreSQL behind a TCP proxy that the lock outages cut.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import redis

from autoscaler.alerts import Alerts
from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.locks.postgres import PostgresLock, PostgresLockConfig
from autoscaler.locks.redis import _ACQUIRE, RedisLock, RedisLockConfig
from autoscaler.loop import Autoscaler, TickReport
from autoscaler.model import Action, Formation, Metric, Reading, Status
from autoscaler.ports import (
    Conflict,
    PlatformError,
    RateLimited,
    Rejected,
    SourceError,
    WriteUnknown,
)
from tests.helpers import DATABASE_URL, TcpProxy

STEP = 5.0  # AUTOSCALER_INTERVAL
TTL = 15.0
HEROKU_CALLS_PER_HOUR = 4500
ENV = {
    "AUTOSCALER_PLATFORM": "heroku",
    "HEROKU_API_TOKEN": "t",
    "HEROKU_APP_NAME": "app",
    "AUTOSCALER_PROCESSES": "web,worker",
    "AUTOSCALER_WORKER_SOURCE": "rq",
    "AUTOSCALER_WEB_MIN": "2",
    "AUTOSCALER_WEB_MAX": "8",
    "AUTOSCALER_WORKER_MIN": "0",
    "AUTOSCALER_WORKER_MAX": "5",
    "AUTOSCALER_WEB_DOWN_DELAY": "30s",
    "AUTOSCALER_WORKER_DOWN_DELAY": "30s",
    "AUTOSCALER_WEB_UP_COOLDOWN": "30s",
    "AUTOSCALER_INTERVAL": "5s",
    "AUTOSCALER_TICK_TIMEOUT": "2s",
}
BOUNDS = {"web": (2, 8), "worker": (0, 5)}


class Quiet:
    def debug(self, *a: Any, **k: Any) -> None: ...
    def info(self, *a: Any, **k: Any) -> None: ...
    def warning(self, *a: Any, **k: Any) -> None: ...
    def error(self, *a: Any, **k: Any) -> None: ...


# ---- the lock backend: Redis semantics on the fake clock, served to the real RedisLock ------


class LeaseStore:
    """What Redis holds for the lease, with expiry on the fake clock, and outages."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.holder: str | None = None
        self.expires = 0.0
        self.epoch = 0
        self.down_until = 0.0

    def _live(self) -> str | None:
        if self.holder is not None and self.clock.mono >= self.expires:
            self.holder = None
        return self.holder

    def check_up(self) -> None:
        if self.clock.mono < self.down_until:
            raise redis.ConnectionError("Error 111 connecting to redis: Connection refused.")

    def holds(self, token: str) -> bool:
        return self._live() == token


class FakeRedisClient:
    """The two calls ``RedisLock`` makes (its Lua scripts), answered from a ``LeaseStore``."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store

    def register_script(self, script: str) -> Any:
        acquire = script == _ACQUIRE

        def run(keys: Sequence[str], args: Sequence[Any]) -> Any:
            s = self.store
            s.check_up()
            token, ttl = str(args[0]), int(args[1]) / 1000 if acquire else 0.0
            holder = s._live()
            if not acquire:
                if holder == token:
                    s.holder = None
                    return 1
                return 0
            if holder == token:
                s.expires = s.clock.mono + ttl
                return [1, s.epoch]
            if holder is not None:
                return [0, s.epoch]
            s.epoch += 1
            s.holder, s.expires = token, s.clock.mono + ttl
            return [2, s.epoch]

        return run

    def close(self) -> None: ...


# ---- the platform and the sources -----------------------------------------------------------


@dataclass
class World:
    rng: random.Random
    clock: FakeClock
    store: LeaseStore
    quantities: dict[str, int] = field(default_factory=lambda: {"web": 3, "worker": 1})
    updated_at: float = 0.0
    calls: list[tuple[float, str]] = field(default_factory=list)  # (mono, daemon)
    writes: list[tuple[float, str, dict[str, int]]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    trusted: dict[tuple[str, str], bool] = field(default_factory=dict)  # (daemon, process)
    faults: dict[str, int] = field(default_factory=dict)
    on_read: Any = None  # a hook for a pause in the middle of a tick

    def count(self, fault: str) -> None:
        self.faults[fault] = self.faults.get(fault, 0) + 1

    def load_ms(self, process: str) -> float:
        """The true signal: a burst every five minutes, quiet in between."""
        t = self.clock.mono
        wave = max(0.0, math.sin(t / 150.0 * math.pi)) ** 3
        base = 400.0 if process == "web" else 40_000.0
        return base * wave * self.rng.uniform(0.7, 1.3) + self.rng.uniform(0, 20)


class ChaosPlatform:
    """One daemon's view of the shared formation: counts its calls, injects faults."""

    name = "chaos"

    def __init__(self, world: World, daemon: str, holds: Callable[[], bool]) -> None:
        self.world, self.daemon, self.holds = world, daemon, holds
        self.blocked_until = 0.0

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        w = self.world
        w.calls.append((w.clock.mono, self.daemon))
        if w.on_read is not None:
            hook, w.on_read = w.on_read, None
            hook(self.daemon)
        roll = w.rng.random()
        if roll < 0.03:
            w.count("read 503")
            raise PlatformError("heroku: reading the formation: 503 service unavailable")
        if roll < 0.04:
            w.count("read 429")
            raise RateLimited("heroku: 429 rate limit", retry_after=20.0)
        if roll < 0.045:
            w.count("read crash")
            raise ValueError("an adapter bug")
        return {p: Formation(w.quantities[p], w.updated_at) for p in processes}

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        w = self.world
        now = w.clock.mono
        w.calls.append((now, self.daemon))
        if now < self.blocked_until:
            w.violations.append(f"{self.daemon} wrote inside a Retry-After at {now}")
        w.count("write attempt")
        if any(w.quantities[p] != q for p, q in expected.items()):
            w.count("conflict")
            raise Conflict("the formation changed since it was read")
        roll = w.rng.random()
        if roll < 0.06:
            w.count("write 429")
            self.blocked_until = now + 30.0
            raise RateLimited("heroku: 429 rate limit", retry_after=30.0)
        if roll < 0.14:
            w.count("write 503")
            raise PlatformError("heroku: scaling: 503")
        if roll < 0.18:
            w.count("write rejected: release in progress")
            raise Rejected("release phase in progress", retryable=True)
        applied = roll < 0.22 or roll >= 0.26
        if applied:
            self._apply(targets)
        if roll < 0.26:
            w.count("write timeout" + (" (applied)" if applied else ""))
            raise WriteUnknown("heroku: scaling: timed out after sending")

    def _apply(self, targets: Mapping[str, int]) -> None:
        w = self.world
        if not self.holds():
            w.violations.append(f"{self.daemon} wrote {dict(targets)} without the lease")
        for process, q in targets.items():
            low, high = BOUNDS[process]
            if not low <= q <= high:
                w.violations.append(f"{self.daemon} set {process}={q} outside {low}..{high}")
            if q < w.quantities[process] and not w.trusted.get((self.daemon, process), False):
                w.violations.append(f"{self.daemon} scaled {process} down on untrusted data")
        w.quantities.update(targets)
        w.updated_at = w.clock.wall
        w.writes.append((w.clock.mono, self.daemon, dict(targets)))

    def check(self, processes: Sequence[str]) -> str:
        return "chaos"

    def close(self) -> None: ...


class ChaosSource:
    def __init__(self, world: World, daemon: str, process: str) -> None:
        self.world, self.daemon, self.process = world, daemon, process
        self.metric = Metric.REQUEST_QUEUE_TIME if process == "web" else Metric.JOB_LATENCY

    def sample(self, now: float) -> Reading:
        w = self.world
        key = (self.daemon, self.process)
        w.trusted[key] = False
        roll = w.rng.random()
        if roll < 0.06:
            w.count("source error")
            raise SourceError(f"{self.process}: redis: connection refused")
        if roll < 0.08:
            w.count("source crash")
            raise RuntimeError("a source bug")
        if roll < 0.11:
            w.count("source missing")
            return Reading(self.metric, None, 0, None)
        if roll < 0.13:
            w.count("source stale")
            return Reading(self.metric, 5.0, 50, 10_000.0)
        if roll < 0.14:
            w.count("source NaN")
            return Reading(self.metric, float("nan"), 50, 1.0)
        w.trusted[key] = True
        return Reading(self.metric, w.load_ms(self.process), 50, 1.0)

    def check(self) -> str:
        return "chaos"

    def close(self) -> None: ...


# ---- daemons ----------------------------------------------------------------------------------


class PgBackend:
    """The real PostgreSQL behind one TCP proxy (the network the daemons share with it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proxy = TcpProxy(5432)
        self.admin = psycopg.connect(DATABASE_URL, autocommit=True)
        self.down_until = 0.0

    def lock(self) -> PostgresLock:
        url = f"postgresql://postgres@127.0.0.1:{self.proxy.port}/test"
        return PostgresLock(PostgresLockConfig(url, self.name, self.name, ttl=TTL))

    def holds(self, lock: PostgresLock) -> bool:
        """Whether the server shows this lock's token as the live holder, right now."""
        try:
            row = self.admin.execute(
                f"SELECT holder = %s AND expires_at > now() FROM {self.name}.leases"
                " WHERE name = %s",
                (lock._token, self.name),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return False
        return row is not None and row[0] is True

    def close(self) -> None:
        self.proxy.close()
        self.admin.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        self.admin.close()


class Daemon:
    def __init__(self, world: World, name: str, pg: PgBackend | None = None) -> None:
        self.world, self.name, self.pg = world, name, pg
        self.paused_until = 0.0
        self.alerts: list[str] = []
        self.start()

    def start(self) -> None:
        w = self.world
        lock: Any
        if self.pg is None:
            lock = RedisLock(
                RedisLockConfig("redis://fake", "chaos", TTL),
                client=FakeRedisClient(w.store),  # type: ignore[arg-type]
                monotonic=lambda: w.clock.now().mono,
            )
            holds = lambda: w.store.holds(lock._token)  # noqa: E731
        else:
            pg = self.pg
            lock = pg.lock()
            holds = lambda: pg.holds(lock)  # noqa: E731
        self.lock = lock
        sources = {p: ChaosSource(w, self.name, p) for p in BOUNDS}
        self.platform = ChaosPlatform(w, self.name, holds)
        self.scaler = Autoscaler(
            load(ENV),
            self.platform,
            sources,
            w.clock,
            lock=lock,
            alerts=Alerts(self.alerts.append, after=120.0),
            log=Quiet(),
        )

    def restart(self, graceful: bool) -> None:
        if graceful:
            self.scaler.close()  # releases the lease
        else:  # a crash: the lease is left to expire
            self.scaler._executor.shutdown(wait=False)
        self.start()

    def tick(self) -> TickReport:
        report = self.scaler.tick()
        assert isinstance(report, TickReport)
        for d in report.decisions:
            if d.action is Action.DOWN:
                assert d.status in (Status.OK, Status.SPARSE), d
        return report


def chaos(seed: int, minutes: int, pg: PgBackend | None = None) -> tuple[World, set[int], int]:
    """Runs two daemons through ``minutes`` of faults; returns the world, the epochs that led,
    and how many ticks saw a lock error."""
    clock = FakeClock()
    world = World(random.Random(seed), clock, LeaseStore(clock))
    daemons = [Daemon(world, "a", pg), Daemon(world, "b", pg)]
    leaders: list[int | None] = []
    lock_errors = 0

    def pause_mid_tick(who: str) -> None:
        """The daemon reading now freezes for 25 s; the other one keeps ticking meanwhile."""
        world.count("pause mid-tick")
        other = next(d for d in daemons if d.name != who)
        for _ in range(5):
            clock.advance(STEP)
            other.tick()

    def lock_outage(seconds: float) -> None:
        world.count("lock outage")
        if pg is None:
            world.store.down_until = clock.mono + seconds
        else:
            pg.proxy.cut()
            pg.down_until = clock.mono + seconds

    start = clock.mono
    end = start + minutes * 60
    scheduled = {int(minutes * 60 * 0.3): True, int(minutes * 60 * 0.6): False}
    while clock.mono < end:
        if pg is not None and pg.down_until and clock.mono >= pg.down_until:
            pg.proxy.heal()
            pg.down_until = 0.0
        elapsed = int(clock.mono - start)
        if elapsed in scheduled:  # restart the leader gracefully, later crash it
            leader = next((d for d in daemons if d.lock._held is not None), daemons[0])
            leader.restart(graceful=scheduled.pop(elapsed))
            world.count("restart")
        roll = world.rng.random()
        if roll < 0.004:
            lock_outage(world.rng.uniform(20, 120))
        elif roll < 0.007:
            d = world.rng.choice(daemons)
            d.restart(graceful=world.rng.random() < 0.5)
            world.count("restart")
        elif roll < 0.010:
            world.rng.choice(daemons).paused_until = clock.mono + world.rng.uniform(20, 60)
            world.count("pause")
        elif roll < 0.040:
            world.on_read = pause_mid_tick
        elif roll < 0.042:
            world.quantities["web"] = world.rng.randint(*BOUNDS["web"])  # a human's change
            world.count("drift")
        order = daemons[:] if world.rng.random() < 0.5 else daemons[::-1]
        for d in order:
            if clock.mono >= d.paused_until:
                report = d.tick()
                lock_errors += report.lock_error is not None
                leaders.append(report.epoch if report.is_leader else None)
        clock.advance(STEP)
    for d in daemons:
        d.scaler.close()
    return world, {e for e in leaders if e is not None}, lock_errors


def assert_safe(world: World, epochs: set[int], lock_errors: int) -> None:
    assert world.violations == []
    for p, (low, high) in BOUNDS.items():
        assert low <= world.quantities[p] <= high
    # API calls within the platform's limit in every hour (both daemons share the account)
    times = sorted(t for t, _ in world.calls)
    assert all(
        sum(1 for u in times if t <= u < t + 3600) <= HEROKU_CALLS_PER_HOUR for t in times[::50]
    )
    # the run did exercise what it claims to
    assert len(world.writes) >= 20, world.faults
    assert len(epochs) >= 3, "expected several handovers"
    assert lock_errors > 0
    for fault in ("write 429", "write 503", "write timeout", "source error", "restart", "pause"):
        assert any(k.startswith(fault) for k in world.faults), (fault, world.faults)
    print(len(world.writes), "writes,", len(epochs), "epochs,", world.faults)


@pytest.mark.parametrize("seed", [1, 2])
def test_an_hour_of_chaos_keeps_every_safety_property(seed: int) -> None:
    assert_safe(*chaos(seed, minutes=75))


@pytest.mark.integration
def test_chaos_with_the_real_postgres_lock_keeps_every_safety_property(unique: str) -> None:
    pg = PgBackend(unique)
    try:
        assert_safe(*chaos(3, minutes=60, pg=pg))
    finally:
        pg.close()
