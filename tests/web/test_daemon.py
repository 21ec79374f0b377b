"""The daemon passes the web signal's ``in_use`` on to the policy's observation."""

from __future__ import annotations

from autoscaler.model import Formation, Metric, Reading, Status
from autoscaler.observe import observe


def test_the_observation_carries_the_readings_in_use() -> None:
    reading = Reading(Metric.REQUEST_QUEUE_TIME, 10.0, 100, 0.0, rate_per_s=50.0, in_use=3.5)
    obs = observe(reading, Formation(2), stale_after=60.0, min_samples=5)
    assert (obs.status, obs.in_use) == (Status.OK, 3.5)


def test_in_use_unknown_stays_unknown_and_a_stale_reading_carries_none() -> None:
    obs = observe(
        Reading(Metric.REQUEST_QUEUE_TIME, 10.0, 100, 0.0),
        Formation(2),
        stale_after=60.0,
        min_samples=5,
    )
    assert obs.in_use is None
    stale = Reading(Metric.REQUEST_QUEUE_TIME, 10.0, 100, 3600.0, in_use=3.5)
    obs = observe(stale, Formation(2), stale_after=60.0, min_samples=5)
    assert (obs.status, obs.in_use) == (Status.STALE, None)
