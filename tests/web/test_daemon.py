"""The daemon passes the web signal's ``in_use`` on to the policy's observation."""

from __future__ import annotations

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.loop import Autoscaler
from autoscaler.model import Metric, Reading, Status
from autoscaler.testing import FakePlatform, FakeSource


def _scaler() -> Autoscaler:
    settings = load({"AUTOSCALER_PLATFORM": "heroku", "AUTOSCALER_PROCESSES": "web"})
    return Autoscaler(settings, FakePlatform({"web": 2}), {"web": FakeSource(10.0)}, FakeClock())


def test_the_observation_carries_the_readings_in_use() -> None:
    reading = Reading(Metric.REQUEST_QUEUE_TIME, 10.0, 100, 0.0, rate_per_s=50.0, in_use=3.5)
    obs = _scaler().observe("web", 2, reading)
    assert (obs.status, obs.in_use) == (Status.OK, 3.5)


def test_in_use_unknown_stays_unknown_and_a_stale_reading_carries_none() -> None:
    scaler = _scaler()
    obs = scaler.observe("web", 2, Reading(Metric.REQUEST_QUEUE_TIME, 10.0, 100, 0.0))
    assert obs.in_use is None
    stale = Reading(Metric.REQUEST_QUEUE_TIME, 10.0, 100, 3600.0, in_use=3.5)
    obs = scaler.observe("web", 2, stale)
    assert (obs.status, obs.in_use) == (Status.STALE, None)
