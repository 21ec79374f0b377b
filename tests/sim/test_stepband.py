"""The step baselines' band rule, one check at a time (web and worker models share it)."""

import math

import pytest

from autoscaler.sim.stepband import Band, BandClock, step_band

BAND = Band(low=1, high=5, up_ms=200.0, down_ms=50.0, up_cooldown=180.0, down_delay=600.0)
NEVER = BandClock()


@pytest.mark.parametrize(
    ("case", "clock", "t", "current", "signal", "want", "after"),
    [
        ("above the band: +1 at once", NEVER, 1000.0, 2, 300.0, 3, BandClock(1000.0, 1000.0)),
        (
            "above within the cooldown: hold",
            BandClock(900.0, 900.0),
            1000.0,
            3,
            300.0,
            3,
            BandClock(900.0, 900.0),
        ),
        (
            "above once the cooldown is over: +1",
            BandClock(820.0, 820.0),
            1000.0,
            3,
            300.0,
            4,
            BandClock(1000.0, 1000.0),
        ),
        ("above at the maximum: hold", NEVER, 1000.0, 5, 300.0, 5, NEVER),
        (
            "in the band: hold, the below clock reset",
            BandClock(below_since=10.0),
            1000.0,
            3,
            100.0,
            3,
            NEVER,
        ),
        ("first below: the clock starts", NEVER, 1000.0, 3, 10.0, 3, BandClock(below_since=1000.0)),
        (
            "below for less than the delay: hold",
            BandClock(below_since=500.0),
            1000.0,
            3,
            10.0,
            3,
            BandClock(below_since=500.0),
        ),
        (
            "below for the delay: -1",
            BandClock(below_since=400.0),
            1000.0,
            3,
            10.0,
            2,
            BandClock(-math.inf, 1000.0, 400.0),
        ),
        (
            "below for the delay but a change within it: hold",
            BandClock(0.0, 500.0, 100.0),
            1000.0,
            3,
            10.0,
            3,
            BandClock(0.0, 500.0, 100.0),
        ),
        (
            "below at the minimum: hold",
            BandClock(below_since=0.0),
            1000.0,
            1,
            10.0,
            1,
            BandClock(below_since=0.0),
        ),
        ("on the up threshold: not above, hold", NEVER, 1000.0, 3, 200.0, 3, NEVER),
        ("on the down threshold: not below", BandClock(below_since=0.0), 1000.0, 3, 50.0, 3, NEVER),
    ],
)
def test_step_band(case, clock, t, current, signal, want, after):
    assert step_band(BAND, clock, t, current, signal) == (want, after), case
