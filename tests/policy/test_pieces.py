"""The pure pieces beside the ladder: the capacity model, the rate's record, the sizing and
the stabilisation window."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.policy import capacity as cap
from autoscaler.policy import load, sizing
from autoscaler.policy.state import PolicyState

TOP, UP = 125.0, 200.0


def read(bins, per_instance, signal_ms, times):
    for _ in range(times):
        bins, _ = cap.learn(bins, per_instance, signal_ms)
    return bins


def test_a_quiet_load_is_a_floor_and_a_load_near_the_top_makes_it_sure():
    bins = read({}, 10.0, 20.0, cap.BIN_READINGS)
    value, sure = cap.estimate(bins, TOP, UP)
    assert value is not None and abs(value - 10.0) / 10.0 < 0.05 and not sure
    value, sure = cap.estimate(read(bins, 20.0, 150.0, cap.BIN_READINGS), TOP, UP)
    assert value is not None and abs(value - 20.0) / 20.0 < 0.05 and sure


def test_an_overload_just_above_the_last_quiet_load_brackets_it():
    """Fast requests or many slots: the signal stays near 0 until the instances are full."""
    bins = read({}, 20.0, 5.0, cap.BIN_READINGS)
    assert cap.estimate(read(bins, 21.5, 900.0, cap.STOP_READINGS), TOP, UP)[1]
    assert not cap.estimate(read(bins, 40.0, 900.0, cap.STOP_READINGS), TOP, UP)[1]  # far above


def test_the_estimate_is_lowered_when_the_app_gets_slower_and_raised_when_faster():
    bins = read(read({}, 10.0, 30.0, 40), 20.0, 150.0, 40)
    before, _ = cap.estimate(bins, TOP, UP)
    slower = read(bins, 20.0, 400.0, 3 * cap.BIN_MEMORY)  # the same load now overloads
    lowered, _ = cap.estimate(slower, TOP, UP)
    assert before is not None and lowered is not None and lowered < 0.6 * before
    faster = read(read(bins, 20.0, 20.0, 3 * cap.BIN_MEMORY), 30.0, 150.0, cap.BIN_READINGS)
    raised, sure = cap.estimate(faster, TOP, UP)
    assert raised is not None and raised > 1.4 * before and sure


def test_bins_stay_bounded():
    bins = {}
    for i in range(1000):
        bins, _ = cap.learn(bins, 1.0 + i, 10.0)
    assert len(bins) <= cap.MAX_BINS


def test_a_reading_counts_only_with_the_formation_settled_and_its_own_overload():
    assert cap.settled(None, 100.0, 60.0, 30.0)
    assert not cap.settled(20.0, 100.0, 60.0, 30.0)
    assert cap.settled(10.0, 100.0, 60.0, 30.0)
    assert cap.own_overload(None, 0.0, 60.0, 30.0)  # not above the band
    assert not cap.own_overload(50.0, 40.0, 60.0, 30.0)  # a backlog from before the change
    assert cap.own_overload(200.0, 40.0, 60.0, 30.0)  # began on the settled formation


def test_the_rate_record_follows_the_mean_and_spread():
    rec = PolicyState()
    t = 0.0
    for i in range(3000):
        rec.rate_mean, rec.rate_var, rec.rate_since, _ = load.track(
            rec, 60.0 if i % 2 else 100.0, t
        )
        rec.rate_at = t
        t += 5.0
    assert rec.rate_mean is not None and abs(rec.rate_mean - 80.0) < 2.0
    assert abs(math.sqrt(rec.rate_var) - 20.0) < 2.0
    assert abs(load.expected(rec, 70.0, t, 1.5) - (rec.rate_mean + 1.5 * 20.0)) < 3.0
    assert load.expected(rec, 150.0, t, 1.5) == 150.0  # never less than now
    assert load.expected(rec, 70.0, t, 0.0) == 70.0  # HEADROOM 0: the current rate


@pytest.mark.parametrize(
    ("rate", "signal", "current", "need"),
    [
        (100.0, 0.0, 2, 5),  # the rate alone: 100 / 20
        (100.0, 30_000.0, 2, 6),  # plus 2 x 20 requests/s served for 30 s, drained in 60 s
        (100.0, 30_000.0, 10, 8),  # the backlog comes in at most at the arrival rate
    ],
)
def test_an_upscale_carries_the_rate_and_drains_the_backlog(rate, signal, current, need):
    assert sizing.for_load_and_backlog(rate, signal, current, 20.0, 60.0) == need


def test_the_per_tick_limit_and_max():
    assert sizing.up_limit(2, 100) == 2 * sizing.UP_LIMIT
    assert sizing.up_limit(50, 100) == 100
    assert sizing.up_limit(0, 100) == 1


@pytest.mark.parametrize(
    ("current", "signal", "desired"),
    [(1, 400.0, 2), (4, 300.0, 6), (4, 210.0, 5), (10, 1000.0, 20), (0, 1000.0, 1)],
)
def test_without_a_rate_the_overload_sizes_at_most_doubling(current, signal, desired):
    assert sizing.for_overload(current, signal, 200.0) == desired


def test_the_window_keeps_the_highest_recommendation_of_its_span():
    w = ()
    for t, q in [(0.0, 9), (5.0, 4), (10.0, 6), (15.0, 3)]:
        w = sizing.push(w, t, q, True, 60.0)
    assert sizing.highest(w) == (9, True)
    w = sizing.push(w, 61.0, 2, False, 60.0)  # 9 is older than the span now
    assert sizing.highest(w) == (6, True)


@given(st.lists(st.tuples(st.floats(0, 10), st.integers(0, 50)), min_size=1, max_size=80))
def test_the_window_equals_the_plain_maximum(steps):
    span, t, w, seen = 60.0, 0.0, (), []
    for gap, q in steps:
        t += gap
        w = sizing.push(w, t, q, True, span)
        seen.append((t, q))
        assert sizing.highest(w)[0] == max(q for when, q in seen if t - when < span or when == t)


def test_a_burst_does_not_teach_the_spread_its_height():
    """Readings far from the mean count as ``CLIP`` spreads: ten minutes at 50 times the rate
    leave the expected rate, ten minutes after, near the usual, where an unclipped record kept
    it at several times the usual for an hour (the capacity held for a burst long gone)."""
    rec = PolicyState()
    t = 0.0

    def feed(rate: float, ticks: int) -> None:
        nonlocal t
        for _ in range(ticks):
            rec.rate_mean, rec.rate_var, rec.rate_since, _ = load.track(rec, rate, t)
            rec.rate_at = t
            t += 5.0

    for i in range(720):  # an hour of a noisy 10 requests/s
        feed(9.0 if i % 2 else 11.0, 1)
    usual = load.expected(rec, 10.0, t, 1.8)
    assert load.track(rec, 11.5, t)[3] is False  # within the usual spread: no burst
    assert load.track(rec, 500.0, t)[3] is True  # fifty times the mean: a burst
    assert load.track(rec, 0.0, t)[3] is False  # far below the mean: clipped, but no burst
    feed(500.0, 120)  # ten minutes of a flash crowd
    feed(10.0, 120)  # ten minutes back at the usual
    after = load.expected(rec, 10.0, t, 1.8)
    assert usual < 13.0
    assert after < 4.0 * usual
    feed(300.0, 720)  # a lasting change: the mean still follows it within an hour
    assert rec.rate_mean is not None and rec.rate_mean > 250.0


def test_the_hot_path_update_is_learn_and_says_when_the_kind_changed():
    rng = random.Random(7)
    bins: dict[int, tuple[float, int]] = {}
    changes = 0
    for _ in range(5000):
        load_ = rng.uniform(5.0, 40.0)
        signal = rng.choice([10.0, 60.0, 150.0, 400.0]) * load_ / 20.0
        fast, changed = cap.update(bins, load_, signal, 125.0, 200.0)
        slow, k = cap.learn(bins, load_, signal)
        assert fast == slow
        before = cap.kind(bins.get(k), 125.0, 200.0)
        assert changed == (before != cap.kind(slow.get(k), 125.0, 200.0))
        changes += changed
        bins = fast
    assert changes > 10
