"""Replaying the app's own traffic: the fit of the app model and the trace, from minutes."""

from __future__ import annotations

import pytest

from autoscaler.history import Minute, Recorder
from autoscaler.sim.owntraffic import fit, trace_csv

DAYS = 1.0


def test_the_fit_reads_service_time_slots_and_boot_from_minutes_and_events() -> None:
    from autoscaler.history import Event

    rows = [Minute(60 * i, 5, 10.0, 20, 20.0, 2.0, 2, 2, 12, 0) for i in range(20)]
    rows += [Minute(1200 + 60 * i, 200, 400.0, 900, 80.0, 8.0, 2, 2, 12, 0) for i in range(6)]
    rows += [
        Minute(1560 + 60 * i, 5, 10.0, 20, 60.0, 6.0, 4, 2 if i < 2 else 4, 12, 0) for i in range(5)
    ]
    events = [Event(1530.0, "web", "decision", "up 2 -> 4", "above_band", 2, 4)]
    f = fit(rows, events, (50.0, 200.0))
    assert f.service_ms == pytest.approx(100.0)
    assert f.concurrency == 4
    assert f.boot_s == pytest.approx(1560 + 180 - 1530)


def test_minutes_without_a_rate_are_filled_from_the_previous_one_and_counted() -> None:
    rows = [
        Minute(0, 1, 1, 1, 2.0, None, 1, 1, 12, 0),
        Minute(120, 1, 1, 1, 3.0, None, 1, 1, 12, 0),
    ]
    text, filled = trace_csv(rows)
    assert text.splitlines() == ["time,requests", "0,120.000", "60,120.000", "120,180.000"]
    assert filled == 1
    assert Recorder is not None
