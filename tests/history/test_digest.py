"""The weekly digest: what a week of history says, sent once a week by the leader."""

from __future__ import annotations

from typing import Any

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.digest import WEEK_S, summarise
from autoscaler.history import Event, Minute
from autoscaler.loop import Autoscaler
from autoscaler.recording import HistoryHook
from autoscaler.stores.memory import MemoryStore
from autoscaler.testing import FakePlatform, FakeSource

T0 = 1_767_225_600


def test_the_digest_counts_hours_minutes_within_the_band_the_worst_minute_and_alerts() -> None:
    rows = [Minute(T0 + 60 * i, 5, 100.0, 300, 10.0, 1.0, 2, 2, 12, 0) for i in range(90)]
    rows += [Minute(T0 + 5400 + 60 * i, 5, 900.0, 2000, 40.0, 4.0, 4, 4, 12, 0) for i in range(10)]
    events = [
        Event(T0 + 5400, "web", "decision", "up 2 -> 4 (above_band)", "above_band", 2, 4),
        Event(T0 + 6000, "*", "alert", "autoscaler: web is at its maximum"),
    ]
    text = summarise({"web": rows}, events, {"web": 200.0}, T0, T0 + WEEK_S)
    assert "web: 3.7 instance-hours, 90.00% of minutes within the band" in text
    assert "worst minute 900 ms at Thu 01:30 UTC" in text
    assert "1 scale events" in text
    assert "alerts: 1:" in text and "at its maximum" in text


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def test_the_leader_sends_one_digest_a_week_and_a_restart_does_not_repeat_it() -> None:
    env = {
        "AUTOSCALER_PLATFORM": "heroku",
        "HEROKU_API_TOKEN": "x" * 20,
        "HEROKU_APP_NAME": "demo",
        "AUTOSCALER_PROCESSES": "web",
    }
    settings = load(env)
    store = MemoryStore()
    sent: list[str] = []
    clock = FakeClock()

    def daemon() -> Autoscaler:
        hook = HistoryHook(settings, store, _Quiet())
        hook.digest_to = sent.append
        return Autoscaler(
            settings,
            FakePlatform({"web": 2}),
            {"web": FakeSource(300.0)},
            clock,
            alerts=hook,
            log=_Quiet(),
        )

    scaler = daemon()
    for _ in range(int(4 * 86400 / 60)):  # a tick a minute, four days
        scaler.tick()
        clock.advance(60)
    scaler = daemon()  # a restart half-way through the week
    for _ in range(int(4 * 86400 / 60)):
        scaler.tick()
        clock.advance(60)
    assert len(sent) == 1
    assert "web:" in sent[0] and "instance-hours" in sent[0]
