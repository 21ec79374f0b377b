"""The loop with a fake platform and fake sources: what gets written, and when nothing does."""

from __future__ import annotations

import io

import pytest

from autoscaler import logs
from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.loop import Autoscaler
from autoscaler.model import Metric
from autoscaler.policy import BIN_READINGS, DEFAULT_DOWN_DELAY
from autoscaler.ports import Conflict, PlatformError, RateLimited, Rejected, WriteUnknown
from autoscaler.testing import FakePlatform, FakeSource

ENV = {
    "AUTOSCALER_PLATFORM": "heroku",
    "HEROKU_API_TOKEN": "t",
    "HEROKU_APP_NAME": "app",
    "AUTOSCALER_PROCESSES": "web,worker",
    "AUTOSCALER_WORKER_SOURCE": "rq",
    "AUTOSCALER_WORKER_MIN": "0",
}


def make(env=None, quantities=None, web=None, worker=None, **kwargs):
    settings = load({**ENV, **(env or {})})
    platform = FakePlatform(dict(quantities or {"web": 2, "worker": 1}))
    sources = {
        "web": web or FakeSource(100.0),
        "worker": worker or FakeSource(5000.0, metric=Metric.JOB_LATENCY),
    }
    clock = FakeClock()
    scaler = Autoscaler(settings, platform, sources, clock, **kwargs)
    return scaler, platform, sources, clock


def test_in_band_signals_write_nothing():
    scaler, platform, _, clock = make()
    for _ in range(20):
        report = scaler.tick()
        clock.advance(5)
    assert platform.journal == []
    assert report.ok
    assert [d.reason.value for d in report.decisions] == ["in_band", "in_band"]


def test_high_queue_time_scales_web_up_once_per_cooldown():
    scaler, platform, sources, clock = make()
    sources["web"].value_ms = 450.0
    for _ in range(13):  # 60 s of ticks
        scaler.tick()
        clock.advance(5)
    assert platform.journal == [{"web": 4}, {"web": 8}]


def test_a_failing_source_holds_and_never_scales_down():
    scaler, platform, sources, clock = make(quantities={"web": 5, "worker": 1})
    sources["web"].error = "redis: connection refused"
    for _ in range(200):  # well past DOWN_DELAY
        report = scaler.tick()
        clock.advance(5)
    assert platform.journal == []
    web = report.decisions[0]
    assert (web.action.value, web.reason.value) == ("hold", "signal_failed")
    assert "connection refused" in report.source_errors["web"]


def test_a_source_that_hangs_is_a_failure_not_a_zero():
    import threading

    release = threading.Event()

    class Hanging(FakeSource):
        def sample(self, now):
            release.wait(5)
            return super().sample(now)

    scaler, _, _, _ = make(
        env={"AUTOSCALER_TICK_TIMEOUT": "200ms"},
        web=Hanging(0.0),
        quantities={"web": 5, "worker": 1},
    )
    report = scaler.tick()
    release.set()
    assert report.decisions[0].reason.value == "signal_failed"
    assert "no answer" in report.source_errors["web"]
    scaler.close()


def test_a_stale_reading_holds():
    scaler, platform, sources, clock = make(quantities={"web": 5, "worker": 1})
    sources["web"].value_ms, sources["web"].age_s = 0.0, 600.0
    for _ in range(100):
        report = scaler.tick()
        clock.advance(5)
    assert platform.journal == []
    assert report.decisions[0].reason.value == "signal_stale"


def test_sustained_low_signal_scales_down_after_down_delay():
    scaler, platform, sources, clock = make(quantities={"web": 4, "worker": 1})
    sources["web"].value_ms = 5.0
    for _ in range(int(DEFAULT_DOWN_DELAY // 5) + 1):  # DOWN_DELAY (its default) + one tick
        scaler.tick()
        clock.advance(5)
    assert platform.journal == [{"web": 3}]


def test_a_failed_write_does_not_start_a_cooldown():
    scaler, platform, sources, clock = make()
    sources["web"].value_ms = 450.0
    platform.fail_writes.append(PlatformError("503 service unavailable"))
    first = scaler.tick()
    assert first.write_error and "503" in first.write_error
    clock.advance(5)
    scaler.tick()  # retried at once: no cooldown was started by the failure
    assert platform.journal == [{"web": 4}]


@pytest.mark.parametrize(
    "error",
    [
        Conflict("web is now 3"),
        Rejected("release phase", retryable=True),
    ],
    ids=["conflict", "rejected-retryable"],
)
def test_refused_writes_leave_the_state_as_it_was(error):
    scaler, platform, sources, clock = make()
    sources["web"].value_ms = 450.0
    platform.fail_writes.append(error)
    assert scaler.tick().write_error
    clock.advance(5)
    scaler.tick()
    assert platform.journal == [{"web": 4}]


def test_rate_limited_writes_wait_for_retry_after():
    scaler, platform, sources, clock = make()
    sources["web"].value_ms = 450.0
    platform.fail_writes.append(RateLimited("429", retry_after=30))
    scaler.tick()
    for _ in range(5):  # 25 s: still blocked
        clock.advance(5)
        assert "rate limited" in (scaler.tick().write_error or "")
    clock.advance(6)
    scaler.tick()
    assert platform.journal == [{"web": 4}]


def test_an_unknown_write_that_applied_is_not_mistaken_for_an_external_change():
    scaler, platform, sources, clock = make()
    sources["web"].value_ms = 450.0
    platform.apply_failed_writes = True
    platform.fail_writes.append(WriteUnknown("read timeout after sending"))
    scaler.tick()
    assert platform.quantities["web"] == 4
    clock.advance(5)
    report = scaler.tick()
    web = report.decisions[0]
    assert not web.adopted
    assert web.reason.value == "up_cooldown"  # the write counted: its cooldown runs


def test_an_unknown_write_that_did_not_apply_is_retried():
    scaler, platform, sources, clock = make()
    sources["web"].value_ms = 450.0
    platform.fail_writes.append(WriteUnknown("connection dropped"))
    scaler.tick()
    assert platform.quantities["web"] == 2
    clock.advance(5)
    scaler.tick()
    assert platform.journal == [{"web": 4}]


def test_dry_run_sends_zero_writes():
    scaler, platform, sources, clock = make(env={"AUTOSCALER_DRY_RUN": "true"})
    platform.writes_forbidden = True
    sources["web"].value_ms = 5000.0
    sources["worker"].value_ms = 0.0
    for _ in range(200):
        report = scaler.tick()
        clock.advance(5)
    assert platform.journal == []
    assert report.dry_run


def test_a_platform_read_failure_is_reported_and_the_next_tick_runs():
    scaler, platform, _, clock = make()
    # the read of both, then each on its own
    platform.fail_reads.extend([PlatformError("connection refused")] * 3)
    bad = scaler.tick()
    clock.advance(5)
    good = scaler.tick()
    assert not bad.ok and "refused" in (bad.platform_error or "")
    assert good.ok and len(good.decisions) == 2


def test_an_unexpected_exception_in_a_source_is_a_failure():
    class Broken(FakeSource):
        def sample(self, now):
            raise KeyError("enqueued_at")

    scaler, _, _, _ = make(web=Broken())
    report = scaler.tick()
    assert "KeyError" in report.source_errors["web"]
    assert report.decisions[0].reason.value == "signal_failed"


def test_external_changes_are_adopted_and_logged():
    out = io.StringIO()
    logs.configure("logfmt", "info", stream=out)
    scaler, platform, _, clock = make(log=logs.get())
    scaler.tick()
    platform.quantities["web"] = 6
    clock.advance(5)
    report = scaler.tick()
    assert report.decisions[0].adopted
    assert "adopted=true" in out.getvalue()


def test_one_decision_event_per_process_per_tick_in_logfmt_holds_at_debug():
    out = io.StringIO()
    logs.configure("logfmt", "debug", stream=out)
    scaler, _, sources, _ = make(log=logs.get())
    sources["web"].value_ms = 340.0
    scaler.tick()
    lines = [line for line in out.getvalue().splitlines() if line.startswith("event=decision")]
    assert len(lines) == 2
    assert lines[0].startswith(
        "event=decision process=web action=up current=2 desired=4 signal_ms=340.0 reason=above_band"
    )
    assert "dry_run=false" in lines[0] and "outcome=written" in lines[0]
    assert "level=info" in lines[0]
    assert "process=worker action=hold" in lines[1] and "level=debug" in lines[1]


def test_at_info_only_changes_are_logged_then_a_summary_every_ten_minutes():
    out = io.StringIO()
    logs.configure("logfmt", "info", stream=out)
    scaler, _, sources, clock = make(log=logs.get())
    sources["web"].value_ms = 340.0
    scaler.tick()  # web 2 -> 4
    sources["web"].value_ms = 100.0
    for _ in range(120):  # ten minutes in band
        clock.advance(5)
        scaler.tick()
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["event=decision"] + ["event=summary"] * 2
    assert "process=web" in lines[0] and "desired=4" in lines[0]
    web = next(line for line in lines if line.startswith("event=summary process=web"))
    assert "quantity=2..4" in web and "signal_ms=100..340" in web and "changes=1" in web


def test_a_repeated_problem_is_logged_once_and_again_when_it_clears():
    out = io.StringIO()
    logs.configure("logfmt", "info", stream=out)
    scaler, platform, _, clock = make(log=logs.get())
    for _ in range(10):
        platform.fail_reads.extend([PlatformError("connection refused")] * 3)
        scaler.tick()
        clock.advance(5)
    scaler.tick()
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["event=platform_read_failed", "event=recovered"]


def test_the_learned_capacity_is_logged_and_exported_and_the_forecast_scales_ahead():
    out = io.StringIO()
    logs.configure("logfmt", "debug", stream=out)
    web = FakeSource(150.0, rate_per_s=80.0)  # 20 requests/s on each of 4, near the band's top
    scaler, platform, _, clock = make(quantities={"web": 4, "worker": 1}, web=web, log=logs.get())
    for _ in range(25):  # 20 settled readings make the load known
        scaler.tick()
        clock.advance(5)
    assert "capacity=" not in out.getvalue().splitlines()[0]
    last = [line for line in out.getvalue().splitlines() if "process=web" in line][-1]
    assert "capacity=2" in last  # about 20 requests/s (bins are 5% wide)
    assert b'autoscaler_capacity_per_instance{process="web"} 2' in scaler.metrics.render()
    assert platform.journal == []  # 80 requests/s, steady: 4 instances carry it
    web.rate_per_s, web.value_ms = 120.0, 100.0  # more arrivals, the signal not yet above the band
    scaler.tick()
    assert platform.journal == [{"web": 6}]


def test_the_learned_boot_is_logged_and_exported():
    out = io.StringIO()
    logs.configure("logfmt", "debug", stream=out)
    scaler, platform, sources, clock = make(log=logs.get())
    platform.ready = 2
    sources["web"].value_ms = 450.0
    scaler.tick()
    assert platform.journal == [{"web": 4}]
    sources["web"].value_ms = 100.0
    for _ in range(4):  # 5..20 s: two of four serve
        clock.advance(5)
        scaler.tick()
    assert "boot_s=" not in out.getvalue()
    platform.ready = 4
    clock.advance(5)
    scaler.tick()
    last = [line for line in out.getvalue().splitlines() if "process=web" in line][-1]
    assert "boot_s=25" in last
    assert b'autoscaler_boot_seconds{process="web"} 25' in scaler.metrics.render()


class FakeLease:
    def __init__(self, epoch):
        self.epoch = epoch


class FakeLock:
    def __init__(self, held=True):
        self.held = held
        self.epoch = 7
        self.released = False

    def acquire(self):
        return FakeLease(self.epoch) if self.held else None

    def valid(self, lease):
        return self.held

    def release(self, lease):
        self.released = True

    def close(self):
        pass


def test_a_follower_decides_but_never_writes():
    lock = FakeLock(held=False)
    scaler, platform, sources, clock = make(lock=lock)
    platform.writes_forbidden = True
    sources["web"].value_ms = 5000.0
    actions = []
    for _ in range(20):
        report = scaler.tick()
        actions.append(report.decisions[0].action.value)
        clock.advance(5)
    assert not report.is_leader
    assert actions.count("up") == 2  # decided (every 60 s cooldown) but never written


def test_a_lease_lost_between_acquire_and_write_blocks_the_write():
    class Expiring(FakeLock):
        def valid(self, lease):
            return False

    scaler, platform, sources, _ = make(lock=Expiring())
    platform.writes_forbidden = True
    sources["web"].value_ms = 5000.0
    report = scaler.tick()
    assert "lease" in (report.write_error or "")


def test_close_releases_the_lease():
    lock = FakeLock()
    scaler, _, _, _ = make(lock=lock)
    scaler.tick()
    scaler.close()
    assert lock.released


def test_no_write_once_stopping():
    scaler, platform, sources, _ = make()
    platform.writes_forbidden = True
    sources["web"].value_ms = 5000.0
    scaler.stopping.set()
    assert "shutting down" in (scaler.tick().write_error or "")


def test_a_deploy_in_progress_defers_the_change_to_a_later_tick():
    scaler, platform, sources, clock = make()
    sources["web"].value_ms = 450.0
    platform.deploying = True
    report = scaler.tick()
    assert "deploy" in (report.write_error or "")
    assert platform.journal == []
    platform.deploying = False
    clock.advance(5)
    scaler.tick()
    assert platform.journal == [{"web": 4}]


def test_the_sources_arrival_rate_sizes_the_upscale():
    scaler, platform, sources, clock = make()
    sources["web"].value_ms, sources["web"].rate_per_s = 100.0, 100.0  # 50/s per instance, in band
    for _ in range(BIN_READINGS):  # read often enough: each instance carries at least 50/s
        scaler.tick()
        clock.advance(5)
    sources["web"].value_ms, sources["web"].rate_per_s = 450.0, 150.0
    scaler.tick()
    assert platform.journal == [{"web": 3}]  # 150/s at 50/s each; the signal ratio alone says 4


def test_capacity_that_never_becomes_ready_stops_the_upscales():
    scaler, platform, sources, clock = make(env={"AUTOSCALER_WEB_PROVISION_TIMEOUT": "90s"})
    sources["web"].value_ms = 5000.0
    platform.ready = 2  # the new instances crash on boot: only the first two ever serve
    reasons = []
    for _ in range(60):  # five minutes of overload
        report = scaler.tick()
        reasons.append(report.decisions[0].reason.value)
        clock.advance(5)
    assert platform.journal == [{"web": 4}, {"web": 8}]
    assert reasons[-1] == "not_ready"


# ---- one process's failed read fails only that process (issue 14 item 16) ---------------------


def test_a_process_whose_read_fails_fails_alone_the_others_are_decided_and_written():
    scaler, platform, sources, clock = make(quantities={"web": 2, "worker": 0})
    platform.broken["web"] = Rejected("render: web has autoscaling on", retryable=False)
    sources["web"].value_ms = 5000.0
    sources["worker"].value_ms, sources["worker"].depth = 5000.0, 3  # jobs waiting, no worker
    report = scaler.tick()
    assert [d.process for d in report.decisions] == ["worker"]
    assert report.decisions[0].reason.value == "scale_from_zero"
    assert platform.journal == [{"worker": 1}]
    assert "autoscaling on" in report.read_errors["web"]
    assert "autoscaling on" in (report.platform_error or "")  # alerts see it
    assert report.ok  # the daemon did its work for the process it could read
    del platform.broken["web"]
    clock.advance(5)
    assert [d.process for d in scaler.tick().decisions] == ["web", "worker"]


def test_a_rate_limited_read_is_not_repeated_per_process():
    scaler, platform, _, _ = make()
    platform.fail_reads.append(RateLimited("429", retry_after=10))
    report = scaler.tick()
    assert platform.reads == 1
    assert set(report.read_errors) == {"web", "worker"} and not report.ok


# ---- a write refused for good is not re-sent every tick (issue 14 item 9) ----------------------


def refusing(**kwargs):
    scaler, platform, sources, clock = make(**kwargs)
    sources["web"].value_ms = 450.0
    attempts = []

    def scale(targets, expected):
        attempts.append(dict(targets))
        raise Rejected("heroku: dyno tier limit (needs operator action)", retryable=False)

    platform.scale = scale
    return scaler, platform, sources, clock, attempts


def test_a_refused_write_is_not_sent_again_within_the_hour_and_the_alert_says_so():
    from autoscaler.alerts import Alerts

    sent = []
    scaler, _, _, clock, attempts = refusing(alerts=Alerts(sent.append, after=0.0))
    for _ in range(700):  # 58 minutes of ticks, the signal above the band all along
        report = scaler.tick()
        clock.advance(5)
    assert attempts == [{"web": 4}]
    assert report.outcomes["web"].value == "not_sent"
    assert "refused this change" in (report.write_error or "")
    assert len(sent) == 1 and "not sent again for 60 minutes unless the formation" in sent[0]
    for _ in range(30):  # past the hour: tried once more
        scaler.tick()
        clock.advance(5)
    assert attempts == [{"web": 4}, {"web": 4}]


def test_a_refused_write_is_sent_again_when_the_formation_changes():
    scaler, platform, _, clock, attempts = refusing()
    scaler.tick()
    clock.advance(5)
    platform.quantities["web"] = 3  # someone changed it (adopted: cooldowns restart)
    for _ in range(30):
        scaler.tick()
        clock.advance(5)
    assert attempts[0] == {"web": 4}
    assert attempts[1:] == [{"web": 6}]


def test_a_refused_write_is_sent_again_when_the_direction_changes():
    scaler, _, sources, clock, attempts = refusing(quantities={"web": 3, "worker": 1})
    scaler.tick()
    sources["web"].value_ms = 5.0
    for _ in range(70):  # below the band past DOWN_DELAY
        clock.advance(5)
        scaler.tick()
    assert attempts == [{"web": 6}, {"web": 2}]


# ---- lock calls bounded by the tick timeout (issue 14 item 13) ---------------------------------


def test_a_lock_call_that_never_answers_means_not_leader_within_the_timeout():
    import threading

    release = threading.Event()

    class Hanging(FakeLock):
        def acquire(self):
            release.wait(10)
            return super().acquire()

    scaler, platform, sources, _ = make(env={"AUTOSCALER_TICK_TIMEOUT": "200ms"}, lock=Hanging())
    platform.writes_forbidden = True
    sources["web"].value_ms = 5000.0
    try:
        report = scaler.tick()
        assert not report.is_leader
        assert "no answer to acquire in 0.1s" in (report.lock_error or "")
        again = scaler.tick()  # the first call still hangs: not tried, not leader
        assert not again.is_leader and "still has no answer" in (again.lock_error or "")
    finally:
        release.set()


def test_a_renewal_check_that_never_answers_blocks_the_write():
    import threading

    release = threading.Event()

    class Hanging(FakeLock):
        def valid(self, lease):
            release.wait(10)
            return True

    scaler, platform, sources, _ = make(env={"AUTOSCALER_TICK_TIMEOUT": "200ms"}, lock=Hanging())
    platform.writes_forbidden = True
    sources["web"].value_ms = 5000.0
    try:
        report = scaler.tick()
        assert not report.is_leader and "lease" in (report.write_error or "")
        assert report.outcomes["web"].value == "not_sent"
    finally:
        release.set()
