"""The built-in simulated app and its ``sim`` platform and source, driven in simulated time."""

from __future__ import annotations

import pytest

from autoscaler.clock import FakeClock
from autoscaler.config import Settings, load
from autoscaler.model import Action, Metric, Observation, Status
from autoscaler.platforms.sim import SimPlatform
from autoscaler.policy import PolicyConfig, PolicyState, decide
from autoscaler.ports import Conflict, PlatformError, SourceError
from autoscaler.registry import build_platform, build_source
from autoscaler.sim.live import ArrivalCurve, LiveApp, forget_apps
from autoscaler.sources.sim import SimSource


@pytest.fixture
def settings() -> Settings:
    return load({"AUTOSCALER_SIM_SEED": "7"})


def make(settings: Settings) -> tuple[FakeClock, LiveApp, SimPlatform, dict[str, SimSource]]:
    clock = FakeClock()
    app = LiveApp(settings, clock)
    sources = {name: SimSource(app, p) for name, p in settings.processes.items()}
    return clock, app, SimPlatform(app, 60.0), sources


def test_curve_has_a_first_burst_then_quiet_and_is_seeded() -> None:
    curve = ArrivalCurve(3)
    assert curve.factor(60.0) < 1.1
    assert curve.factor(600.0) > 5.0
    assert curve.factor(1800.0) < 1.1
    assert ArrivalCurve(3).bursts == curve.bursts
    assert ArrivalCurve(4).bursts != curve.bursts


def test_platform_reads_and_scales_the_formation(settings: Settings) -> None:
    clock, _, platform, _ = make(settings)
    assert {p: f.quantity for p, f in platform.read(["web", "worker"]).items()} == {
        "web": 1,
        "worker": 1,
    }
    clock.advance(10)
    platform.scale({"web": 3}, {"web": 1})
    formation = platform.read(["web"])["web"]
    assert formation.quantity == 3
    assert formation.updated_at == pytest.approx(clock.now().wall)
    assert "web=3" in platform.check(["web"])


def test_platform_refuses_a_write_based_on_a_stale_quantity(settings: Settings) -> None:
    _, app, platform, _ = make(settings)
    with pytest.raises(Conflict):
        platform.scale({"web": 5}, {"web": 2})
    assert app.quantity("web") == 1


def test_platform_and_source_name_an_unknown_process(settings: Settings) -> None:
    _, app, platform, _ = make(settings)
    with pytest.raises(PlatformError, match="urgent"):
        platform.read(["urgent"])
    source = SimSource(app, settings.processes["web"])
    source.process = "urgent"
    with pytest.raises(SourceError, match="urgent"):
        source.sample(0.0)


def test_web_reading_is_the_p95_of_recent_queue_times(settings: Settings) -> None:
    clock, _, platform, sources = make(settings)
    clock.advance(120)  # before the burst: 15 requests/s on one instance of 40/s
    reading = sources["web"].sample(0.0)
    assert reading.metric is Metric.REQUEST_QUEUE_TIME
    assert 300 <= reading.samples <= 600  # about 15/s over the 30 s window
    assert reading.value_ms is not None and reading.value_ms < 200  # below the up threshold
    assert reading.rate_per_s == pytest.approx(15, rel=0.35)
    clock.advance(240)  # well into the burst (x6): one instance is swamped
    reading = sources["web"].sample(0.0)
    assert reading.value_ms is not None and reading.value_ms > 1000
    assert reading.depth is not None and reading.depth > 100
    assert reading.busy == 4  # every slot of the one instance
    platform.close()


def test_worker_reading_is_the_age_of_the_oldest_job(settings: Settings) -> None:
    clock, _, _, sources = make(settings)
    clock.advance(120)
    quiet = sources["worker"].sample(0.0)
    assert quiet.metric is Metric.JOB_LATENCY
    assert quiet.value_ms is not None and quiet.value_ms < 2000
    clock.advance(300)
    busy = sources["worker"].sample(0.0)
    assert busy.value_ms is not None and busy.value_ms > 10_000
    assert busy.depth is not None and busy.depth > 0
    assert busy.samples == busy.depth
    assert busy.busy == 4


def test_the_policy_scales_web_up_then_down_within_an_hour(settings: Settings) -> None:
    """The demo: with the default settings, the real ``decide`` on the sim app scales web up
    during the first burst and back down once it is over, within 60 simulated minutes (fed
    the sources' arrival rate, so its upscales are rate-sized and, once it has learned what an
    instance carries, the forecast keeps capacity ahead)."""
    clock, _, platform, sources = make(settings)
    interval = settings.glob.interval
    cfg = {name: PolicyConfig.from_settings(p) for name, p in settings.processes.items()}
    state = {name: PolicyState() for name in settings.processes}
    actions: list[tuple[str, Action, int]] = []
    for _ in range(int(3600 / interval)):
        clock.advance(interval)
        formation = platform.read(list(settings.processes))
        for name, p in settings.processes.items():
            reading = sources[name].sample(clock.now().wall)
            status = Status.OK if reading.samples >= p.min_samples else Status.SPARSE
            obs = Observation(
                formation[name].quantity,
                reading.value_ms,
                status,
                reading.depth,
                reading.busy,
                rate_per_s=reading.rate_per_s,
            )
            decision, state[name] = decide(cfg[name], state[name], obs, clock.now())
            if decision.action is not Action.HOLD:
                actions.append((name, decision.action, decision.desired))
                platform.scale({name: decision.desired}, {name: decision.current})
    web = [(a, n) for p, a, n in actions if p == "web"]
    assert web[0][0] is Action.UP
    assert (Action.DOWN, 1) in web  # back to the minimum by the end of the hour
    assert any(a is Action.UP for p, a, _ in actions if p == "worker")
    assert platform.read(["web"])["web"].quantity == 1


def test_platform_and_sources_built_from_the_registry_share_one_app() -> None:
    forget_apps()
    settings = load({"AUTOSCALER_SIM_SPEED": "1000", "AUTOSCALER_SIM_SEED": "5"})
    platform = build_platform(settings)
    source = build_source(settings, settings.processes["web"])
    assert isinstance(platform, SimPlatform) and isinstance(source, SimSource)
    assert platform.app is source.app
    assert build_platform(settings).app is platform.app  # type: ignore[attr-defined]
    platform.scale({"web": 2}, {"web": 1})
    assert source.app.quantity("web") == 2
    assert "simulated" in source.check()
    forget_apps()
