"""Replaying the app's own traffic: the fit of the app model and the trace, from minutes."""

from __future__ import annotations

import pytest

from autoscaler.history import Minute, Recorder
from autoscaler.sim.owntraffic import fit, trace_csv

DAYS = 1.0


def test_the_fit_reads_service_time_slots_and_boot_from_minutes_and_events() -> None:
    from autoscaler.history import Event

    calm = [Minute(60 * i, 5, 10.0, 20, 20.0, 2.0, 2, 2, 12, 0, 1.0) for i in range(20)]
    busy = [Minute(1200 + 60 * i, 200, 400.0, 900, 80.0, 7.5, 2, 2, 12, 0, 3.98) for i in range(6)]
    # up 2 -> 4 at 1565; the two new instances serve from the minute at 1680
    booting = [
        Minute(1560 + 60 * i, 5, 10.0, 20, 60.0, 6.0, 4, 2 if i < 2 else 4, 12, 0, None)
        for i in range(5)
    ]
    events = [Event(1565.0, "web", "decision", "up 2 -> 4", "above_band", 2, 4)]
    f = fit(calm + busy + booting, events, (50.0, 200.0))
    assert f.service_ms == pytest.approx(100.0)  # 2 in service at 20/s
    assert f.concurrency == 4  # 3.98 in service per instance: 4 slots at the least
    assert f.boot_s == pytest.approx(1680 + 60 - 1565 - 30)
    assert f.notes == []


def test_without_a_minute_above_the_band_the_slots_are_said_to_be_a_lower_bound() -> None:
    calm = [Minute(60 * i, 5, 10.0, 20, 20.0, 2.0, 2, 2, 12, 0, 1.4) for i in range(20)]
    f = fit(calm, [], (50.0, 200.0))
    assert f.concurrency == 2
    assert any("lower bound" in n for n in f.notes)
    assert any("boot time" in n for n in f.notes)


def test_minutes_without_a_rate_are_filled_from_the_previous_one_and_counted() -> None:
    rows = [
        Minute(0, 1, 1, 1, 2.0, None, 1, 1, 12, 0),
        Minute(120, 1, 1, 1, 3.0, None, 1, 1, 12, 0, None),
    ]
    text, filled = trace_csv(rows)
    assert text.splitlines() == ["time,requests", "0,120.000", "60,120.000", "120,180.000"]
    assert filled == 1
    assert Recorder is not None
