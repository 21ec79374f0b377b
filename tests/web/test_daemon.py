"""The daemon passes the web signal's ``in_use`` from the source's reading to the policy."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler import loop
from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.loop import Autoscaler
from autoscaler.model import Formation, Metric, Observation, Reading, Status
from autoscaler.observe import observe
from autoscaler.testing import FakePlatform


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


class _Source:
    metric = Metric.REQUEST_QUEUE_TIME

    def __init__(self, in_use: float | None) -> None:
        self.in_use = in_use

    def sample(self, now: float) -> Reading:
        return Reading(self.metric, 10.0, 100, 0.0, rate_per_s=50.0, in_use=self.in_use)

    def check(self) -> str:
        return "in_use source"

    def close(self) -> None:
        pass


@pytest.mark.parametrize("in_use", [3.5, None])
def test_a_daemon_tick_hands_the_readings_in_use_to_the_policy(
    monkeypatch: pytest.MonkeyPatch, in_use: float | None
) -> None:
    seen: list[Observation] = []
    real = loop.decide

    def spy(cfg: Any, state: Any, obs: Observation, now: Any) -> Any:
        seen.append(obs)
        return real(cfg, state, obs, now)

    monkeypatch.setattr(loop, "decide", spy)
    env = {"AUTOSCALER_PLATFORM": "heroku", "HEROKU_API_TOKEN": "t", "HEROKU_APP_NAME": "app"}
    settings = load({**env, "AUTOSCALER_PROCESSES": "web"})
    scaler = Autoscaler(settings, FakePlatform({"web": 2}), {"web": _Source(in_use)}, FakeClock())
    scaler.tick()
    assert [obs.in_use for obs in seen] == [in_use]
