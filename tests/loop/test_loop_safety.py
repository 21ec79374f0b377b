"""The real loop with the real Redis lease: lock outages, a lease lost in the middle of a tick,
a fresh daemon's warm-up, ticks that never overlap, health that goes stale.
Scenarios 25, 34, 36, 39, 40, 41, 44."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import redis

from autoscaler.alerts import Alerts
from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.locks.redis import RedisLock, RedisLockConfig
from autoscaler.loop import Autoscaler
from autoscaler.metrics import HealthState, Metrics
from autoscaler.model import Formation
from autoscaler.ports import PlatformError
from autoscaler.testing import FakePlatform, FakeSource
from tests.helpers import REDIS_URL, TcpProxy

ENV = {
    "AUTOSCALER_PLATFORM": "heroku",
    "HEROKU_API_TOKEN": "t",
    "HEROKU_APP_NAME": "app",
    "AUTOSCALER_PROCESSES": "web",
    "AUTOSCALER_INTERVAL": "5s",
    "AUTOSCALER_WEB_DOWN_DELAY": "5m",  # long enough to tell a waited delay from an early write
}


class Quiet:
    def debug(self, *a: Any, **k: Any) -> None: ...
    def info(self, *a: Any, **k: Any) -> None: ...
    def warning(self, *a: Any, **k: Any) -> None: ...
    def error(self, *a: Any, **k: Any) -> None: ...


def scaler(platform: Any, source: FakeSource, clock: FakeClock, **kw: Any) -> Autoscaler:
    return Autoscaler(load(ENV), platform, {"web": source}, clock, log=Quiet(), **kw)


def redis_lock(name: str, clock: FakeClock, url: str = REDIS_URL) -> RedisLock:
    return RedisLock(RedisLockConfig(url, name, 15.0), monotonic=lambda: clock.now().mono)


@pytest.mark.integration
def test_an_unreachable_lock_backend_means_no_write_leader_0_and_an_alert(
    redis_db: redis.Redis, unique: str
) -> None:
    clock = FakeClock()
    proxy = TcpProxy(6379)
    platform = FakePlatform({"web": 2})
    sent: list[str] = []
    metrics = Metrics()
    lock = redis_lock(unique, clock, f"redis://127.0.0.1:{proxy.port}/8")
    s = scaler(
        platform, FakeSource(900.0), clock, lock=lock, metrics=metrics, alerts=Alerts(sent.append)
    )
    try:
        assert s.tick().is_leader  # the signal is high: it scales up once
        assert platform.journal == [{"web": 4}]
        proxy.cut()
        for _ in range(150):  # 12.5 minutes of a dead lock backend, signal still high
            clock.advance(5)
            report = s.tick()
            assert not report.is_leader and report.lock_error
        assert platform.journal == [{"web": 4}]  # fail-safe: nobody writes
        assert metrics.registry.get_sample_value("autoscaler_leader") == 0
        assert any("lost the leader lease" in m for m in sent)
        assert any("the lock backend fails" in m for m in sent)
        proxy.heal()
        clock.advance(5)
        assert s.tick().is_leader
    finally:
        s.close()
        proxy.close()


class PausingPlatform(FakePlatform):
    """Freezes the daemon reading it (a GC pause, a stopped VM) while the world goes on."""

    def __init__(self, quantities: dict[str, int]) -> None:
        super().__init__(quantities)
        self.pause: Any = None

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        if self.pause is not None:
            pause, self.pause = self.pause, None
            pause()
        return super().read(processes)


@pytest.mark.integration
def test_a_lease_lost_in_the_middle_of_a_tick_blocks_the_write_and_the_follower_takes_over(
    redis_db: redis.Redis, unique: str
) -> None:
    clock_a, clock_b = FakeClock(), FakeClock()
    platform = PausingPlatform({"web": 2})
    a = scaler(platform, FakeSource(900.0), clock_a, lock=redis_lock(unique, clock_a))
    b = scaler(platform, FakeSource(900.0), clock_b, lock=redis_lock(unique, clock_b))
    try:
        assert a.tick().is_leader and not b.tick().is_leader
        assert platform.journal == [{"web": 4}]

        def a_freezes_for_20s() -> None:
            clock_a.advance(20)  # A's own clock: its lease is past its deadline
            redis_db.delete(f"{{{unique}}}:lease")  # and the server let it expire
            clock_b.advance(65)  # B's cooldown from the formation's update is over
            report = b.tick()
            assert report.is_leader and report.writes == {"web": 8}

        platform.updated_at = clock_b.now().wall
        clock_a.advance(65)
        platform.pause = a_freezes_for_20s
        report = a.tick()  # A resumes after the read: it still wants to scale ...
        assert report.write_error and "lease" in report.write_error
        assert platform.journal == [{"web": 4}, {"web": 8}]  # ... but only B wrote
        assert not a.tick().is_leader
    finally:
        a.close()
        b.close()


@pytest.mark.integration
def test_a_new_leader_does_not_scale_down_right_after_the_old_leaders_upscale(
    redis_db: redis.Redis, unique: str
) -> None:
    clock = FakeClock()
    platform = FakePlatform({"web": 2})
    seen_by_a, seen_by_b = FakeSource(100.0), FakeSource(1.0)  # B has seen a low signal all along
    a = scaler(platform, seen_by_a, clock, lock=redis_lock(unique, clock))
    b = scaler(platform, seen_by_b, clock, lock=redis_lock(unique, clock))
    try:
        for _ in range(80):  # 400 s: A leads and holds in band, B follows
            assert a.tick().is_leader and not b.tick().is_leader
            clock.advance(5)
        seen_by_a.value_ms = 900.0
        a.tick()
        b.tick()
        upscaled_at = clock.now().mono
        assert platform.journal == [{"web": 4}]
        seen_by_a.value_ms = 100.0
        for _ in range(20):  # 100 s later A dies; its lease expires
            clock.advance(5)
            a.tick()
            b.tick()
        a._executor.shutdown(wait=False)
        redis_db.delete(f"{{{unique}}}:lease")
        first_write = None
        for _ in range(60):
            clock.advance(5)
            report = b.tick()
            assert report.is_leader
            if report.writes and first_write is None:
                first_write = clock.now().mono - upscaled_at
        assert platform.journal[1:2] == [{"web": 3}]
        assert first_write is not None and first_write >= 300  # DOWN_DELAY after the upscale
    finally:
        a.close()
        b.close()


def test_a_fresh_daemon_waits_a_full_down_delay_before_its_first_downscale() -> None:
    clock = FakeClock()
    platform = FakePlatform({"web": 6})  # no update time known
    s = scaler(platform, FakeSource(1.0), clock)
    try:
        first = None
        for i in range(100):
            s.tick()
            if platform.journal and first is None:
                first = i * 5
            clock.advance(5)
        assert first is not None and first >= 300
    finally:
        s.close()


class SlowPlatform(FakePlatform):
    def __init__(self, quantities: dict[str, int]) -> None:
        super().__init__(quantities)
        self.inside = 0
        self.most = 0
        self.guard = threading.Lock()

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(0.2)
        with self.guard:
            self.inside -= 1
        return super().read(processes)


def test_ticks_never_overlap_even_when_one_overruns() -> None:
    platform = SlowPlatform({"web": 2})
    s = scaler(platform, FakeSource(100.0), FakeClock())
    try:
        threads = [threading.Thread(target=s.tick) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert platform.reads == 4 and platform.most == 1
    finally:
        s.close()


def test_health_goes_stale_when_ticks_keep_failing_though_the_process_lives() -> None:
    clock = FakeClock()
    platform = FakePlatform({"web": 2})
    health = HealthState(15.0, clock)
    s = scaler(platform, FakeSource(100.0), clock, health=health)
    try:
        s.tick()
        assert health.ok()[0]
        for _ in range(5):
            platform.fail_reads.append(PlatformError("heroku: 503"))
            clock.advance(5)
            assert s.tick().platform_error  # the tick returns: the daemon lives on
        good, why = health.ok()
        assert not good and "last successful tick" in why
    finally:
        s.close()


class Recorder:
    def __init__(self) -> None:
        self.reports: list[Any] = []
        self.captured: list[BaseException] = []

    def after_tick(self, report: Any) -> None:
        self.reports.append(report)

    def capture(self, exc: BaseException) -> None:
        self.captured.append(exc)


def test_an_unexpected_error_in_a_tick_is_reported_to_sentry_and_the_next_tick_runs() -> None:
    class Buggy(FakePlatform):
        def read(self, processes: Sequence[str]) -> dict[str, Formation]:
            raise ValueError("an adapter bug")

    recorder = Recorder()
    s = scaler(Buggy({"web": 2}), FakeSource(100.0), FakeClock(), alerts=recorder)
    try:
        s.tick()
        s.tick()
    finally:
        s.close()
    assert [type(e) for e in recorder.captured] == [ValueError, ValueError]
    assert len(recorder.reports) == 2
