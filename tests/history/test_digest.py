"""The weekly digest: what a week of history says, sent once a week by the leader."""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import pytest

from autoscaler import digest
from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.digest import WEEK_S, summarise, tune_verdicts
from autoscaler.history import Event, Minute
from autoscaler.loop import Autoscaler
from autoscaler.recording import HistoryHook
from autoscaler.sim.owntraffic import tune_verdict
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
    hook = scaler.alerts
    assert isinstance(hook, HistoryHook) and hook.digest_thread is not None
    hook.digest_thread.join(60)
    assert len(sent) == 1
    assert "web:" in sent[0] and "instance-hours" in sent[0]
    # the source reported no arrival rate: the digest says tune could not replay the week
    assert "web: tune could not run on this week: the history has no arrival rate" in sent[0]


def _week(quantity: int) -> list[Minute]:
    """A week of minutes of a daily swing between 10 and 50 requests/s on ``quantity``
    instances with a low queue time (too few to fit the app: the simulator's defaults)."""
    out = []
    for i in range(7 * 1440):
        rate = 30 + 20 * math.sin(2 * math.pi * i / 1440)
        out.append(Minute(T0 + 60 * i, 5, 10.0, 20, rate, None, quantity, quantity, 12, 0))
    return out


def test_the_digest_says_which_settings_tune_would_change_and_what_they_would_cost() -> None:
    env = {"AUTOSCALER_PROCESSES": "web", "AUTOSCALER_WEB_MAX": "20"}
    # today's settings wait a day below the band before a downscale: they pay for the peak
    settings = load({**env, "AUTOSCALER_WEB_DOWN_DELAY": "86400s"})
    verdict = tune_verdicts({"web": _week(6)}, [], settings)["web"]
    assert verdict.startswith("tune on this week (12 settings tried, app fitted: 100 ms"), verdict
    assert "AUTOSCALER_WEB_DOWN_DELAY=" in verdict
    figures = re.search(
        r"([\d.]+) instance-hours and (\d+) minutes over 200 ms, against ([\d.]+) and (\d+) "
        "with today's settings",
        verdict,
    )
    assert figures is not None, verdict
    assert float(figures[1]) < 0.9 * float(figures[3])
    text = summarise(
        {"web": _week(6)}, [], {"web": 200.0}, T0, T0 + WEEK_S, verdicts={"web": verdict}
    )
    assert f"- web: {verdict}" in text
    assert "autoscaler tune --from-history <process>" not in text


def test_when_only_todays_settings_are_tried_the_verdict_is_no_change() -> None:
    settings = load({"AUTOSCALER_PROCESSES": "web", "AUTOSCALER_WEB_MAX": "20"})
    verdict = tune_verdict(_week(6), [], settings, "web", candidates=1)
    assert "no change; today's settings cost" in verdict
    assert "AUTOSCALER_WEB_" not in verdict


def test_the_digest_is_sent_from_a_thread_of_its_own_while_the_daemon_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tune search (a stand-in here that holds until released; what the real one says is
    tested above) runs in the digest's thread: the daemon ticks on while it runs."""
    env = {"AUTOSCALER_PROCESSES": "web", "AUTOSCALER_WEB_MAX": "20"}
    settings = load(env)
    store = MemoryStore()
    store.write({"web": _week(2)}, [])
    store.put_meta("digest_last", repr(float(T0)))
    release = threading.Event()
    searched: list[tuple[str, int]] = []

    def search(minutes: Any, events: Any, settings: Any) -> dict[str, str]:
        searched.append((threading.current_thread().name, len(minutes["web"])))
        assert release.wait(30), "the tune search was never released"
        return {"web": "tune on this week: no change"}

    monkeypatch.setattr(digest, "tune_verdicts", search)
    hook = HistoryHook(settings, store, _Quiet())
    sent: list[tuple[str, str]] = []
    hook.digest_to = lambda text: sent.append((threading.current_thread().name, text))
    clock = FakeClock(wall=T0 + WEEK_S + 30)
    week = len(digest.read_week(store, ["web"], T0 + WEEK_S + 30)[0]["web"])
    assert week > 6 * 1440
    platform = FakePlatform({"web": 2})
    scaler = Autoscaler(
        settings,
        platform,
        {"web": FakeSource(1000.0, rate_per_s=30.0)},
        clock,
        alerts=hook,
        log=_Quiet(),
    )
    scaler.tick()
    thread = hook.digest_thread
    assert thread is not None
    for _ in range(3):  # the search holds; the ticks go on and scale
        clock.advance(30)
        scaler.tick()
    assert thread.is_alive() and not sent
    assert platform.journal  # the daemon scaled while the search ran
    release.set()
    thread.join(30)
    assert searched == [("autoscaler-digest", week)]
    assert [name for name, _ in sent] == ["autoscaler-digest"]
    assert "- web: tune on this week: no change" in sent[0][1]
