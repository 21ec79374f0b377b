"""The daemon passes the web signal's ``in_use`` from the source's reading to the policy."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler import loop
from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.loop import Autoscaler
from autoscaler.model import Metric, Observation, Reading
from autoscaler.testing import FakePlatform


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
def test_the_policy_observes_the_readings_in_use(
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
