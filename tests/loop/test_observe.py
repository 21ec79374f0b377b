"""One ``observe`` for the daemon and the simulator (issue 15 item 3, issue 11 item 9): the trust
rule, the same readings through the daemon's loop and the simulator's engine policy, and an idle
stretch in a replayed trace."""

from __future__ import annotations

import math
from array import array

import pytest

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.loop import Autoscaler
from autoscaler.model import Formation, Metric, Reading, Status
from autoscaler.observe import observe
from autoscaler.sim.baselines import EnginePolicy
from autoscaler.sim.runner import PolicySpec, Setup, prepare, replay
from autoscaler.sim.traces import Trace
from autoscaler.testing import FakePlatform

RQT, JOB = Metric.REQUEST_QUEUE_TIME, Metric.JOB_LATENCY


def status(reading: Reading | None) -> Status:
    return observe(reading, Formation(3), stale_after=60.0, min_samples=5).status


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        (None, Status.FAILED),
        (Reading(RQT, math.nan, 100), Status.FAILED),
        (Reading(RQT, math.inf, 100), Status.FAILED),
        (Reading(RQT, None, 0, None), Status.MISSING),  # nobody publishes
        (Reading(RQT, None, 0, 4.0), Status.MISSING),  # publishers, unusable headers only
        (Reading(RQT, 10.0, 100, None), Status.MISSING),
        (Reading(RQT, 10.0, 100, 61.0), Status.STALE),
        (Reading(RQT, 10.0, 4, 1.0), Status.SPARSE),
        (Reading(RQT, 10.0, 1, 1.0), Status.SPARSE),
        (Reading(RQT, 0.0, 0, 1.0), Status.OK),  # heartbeats, no requests: an idle window
        (Reading(RQT, 10.0, 5, 1.0), Status.OK),
        (Reading(JOB, 10.0, 1, 0.0), Status.OK),  # a few jobs are not a sparse signal
    ],
)
def test_the_trust_rule(reading: Reading | None, expected: Status) -> None:
    assert status(reading) is expected


def test_every_field_the_policy_uses_is_copied() -> None:
    reading = Reading(RQT, -3.0, 50, 1.0, depth=4, busy=7, rate_per_s=12.5, in_use=3.5, finished=6)
    obs = observe(reading, Formation(3, ready=2), stale_after=60.0, min_samples=5)
    assert (obs.current, obs.signal_ms, obs.status, obs.ready) == (3, 0.0, Status.OK, 2)
    assert (obs.depth, obs.busy, obs.rate_per_s, obs.in_use) == (4, 7, 12.5, 3.5)
    assert obs.finished == 6
    failed = observe(None, Formation(3, ready=2), stale_after=60.0, min_samples=5)
    assert (failed.signal_ms, failed.status, failed.ready) == (None, Status.FAILED, 2)


class Scripted:
    """A web source returning the readings of a script, one per poll."""

    metric = RQT

    def __init__(self, readings: list[Reading]) -> None:
        self.readings = iter(readings)

    def sample(self, now: float) -> Reading:
        return next(self.readings)

    def check(self) -> str:
        return "scripted"

    def close(self) -> None:
        pass


def test_the_daemon_and_the_simulator_decide_alike_on_the_same_readings() -> None:
    """Per 5 s window: (p95 ms or None, requests in the window, instances serving). The
    simulator's engine gets them as the model reports them; the daemon gets the readings the
    request-queue-time source returns for such windows (an idle window with live publishers is
    0 ms from 0 samples; no publisher at all is no value and no age)."""
    windows: list[tuple[float | None, float, int]] = (
        [(100.0, 600.0, 4)] * 6  # in band
        + [(900.0, 900.0, 4)] * 3  # overloaded: up
        + [(300.0, 900.0, 4)] * 6  # instances booting: ready stays 4
        + [(None, 0.0, 8)] * 80  # idle, heartbeats only: scales down
        + [(40.0, 3.0, 8)] * 20  # sparse
        + [(None, 0.0, 0)] * 20  # nobody serves: missing, holds
        + [(50.0, 300.0, 6)] * 40
    )
    settings = load(
        {
            "AUTOSCALER_PLATFORM": "heroku",
            "HEROKU_API_TOKEN": "not-used",  # load checks the platform's variables
            "HEROKU_APP_NAME": "demo",
            "AUTOSCALER_PROCESSES": "web",
            "AUTOSCALER_WEB_MAX": "20",
            "AUTOSCALER_WEB_WINDOW": "30s",
        }
    )
    ps = settings.processes["web"]
    clock = FakeClock()
    start = clock.now()
    platform = FakePlatform({"web": 4}, updated_at=start.wall)
    readings = [
        Reading(RQT, None, 0, None)
        if value is None and serving == 0
        else Reading(RQT, value or 0.0, math.ceil(samples), 0.0, rate_per_s=samples / ps.window)
        for value, samples, serving in windows
    ]
    daemon = Autoscaler(settings, platform, {"web": Scripted(readings)}, clock)
    engine = EnginePolicy(
        daemon.configs["web"], min_samples=ps.min_samples, wall0=start.wall, window_s=ps.window
    )
    serving_now = [0]
    engine.ready = lambda: serving_now[0]
    quantity = 4
    daemon_says, engine_says = [], []
    for value, samples, serving in windows:
        clock.advance(5)
        platform.ready = serving_now[0] = min(serving, quantity)
        report = daemon.tick()
        daemon_says.append(report.decisions[0].desired)
        engine_says.append(engine(clock.now().mono - start.mono, quantity, value, samples, 0.0))
        quantity = platform.quantities["web"]
    daemon.close()
    assert engine_says == daemon_says
    assert daemon_says[6] > 4  # up on the overload
    idle = daemon_says[15:95]  # heartbeats read 0 ms: down in the idle stretch
    assert min(idle) < max(daemon_says[:15])
    assert daemon_says[-1] == daemon_says[-2]  # held at the end


def test_a_multi_hour_idle_stretch_scales_the_simulated_formation_down() -> None:
    # an hour of load, three hours without a request, an hour of load (one-minute bins)
    counts = array("d", [60.0 * 200.0] * 60 + [0.0] * 180 + [60.0 * 200.0] * 60)
    trace = Trace("idle-gap", 1_767_225_600.0, 60.0, counts, None)
    setup = Setup(smooth_s=0.0)
    prepared = prepare(trace, setup)
    from autoscaler.policy import PolicyConfig

    spec = PolicySpec("default", 1, 20, PolicyConfig(low=1, high=20))
    result = replay(prepared, setup, spec)
    busy = max(result.instances[:60])
    idle = result.instances[60 + 30 : 60 + 180]  # half an hour into the gap, to its end
    assert busy >= 4
    assert min(idle) == 1  # down to the minimum, as the daemon fed heartbeats would
    assert max(result.instances[60 + 175 : 60 + 180]) == 1
