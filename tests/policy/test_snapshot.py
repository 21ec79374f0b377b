"""Item 7 of issue 11, the policy's side: what is learned as a small versioned JSON value,
restored into a fresh state, ignored when invalid."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.model import Action, Instant, Observation, Reason
from autoscaler.policy import BIN_READINGS, SHARE_BUDGET, PolicyConfig, PolicyState, decide, learn
from autoscaler.policy.capacity import MAX_BINS
from autoscaler.policy.snapshot import VERSION, restore, snapshot

T = 10_000.0


def learned() -> PolicyState:
    bins: dict[int, tuple[float, int]] = {}
    for load, signal in ((12.0, 40.0), (20.0, 150.0)):
        for _ in range(BIN_READINGS):
            bins, _ = learn(bins, load, signal)
    return PolicyState(
        4,
        above_since=None,
        below_since=T - 50,
        last_up=T - 30,
        last_change=T - 30,
        capacity=20.0,
        sure=True,
        bins=bins,
        quiet=18.5,
        slots=3.5,
        slot_bins={40: (20.0, 25)},
        rate_mean=80.0,
        rate_var=100.0,
        rate_at=T - 5,
        rate_since=T - 3000,
        over_share=0.004,
        bursts=((T - 7200, 6, 900.0, False), (T - 3600, 7, 1000.0, True)),
    )


def test_a_snapshot_survives_json_and_restores_what_was_learned_but_no_clock():
    data = json.loads(json.dumps(snapshot(learned(), T)))
    assert data["version"] == VERSION
    later = 50.0  # another process: its own monotonic clock
    state = restore(PolicyState(last_change=later - 100), data, later)
    before = learned()
    assert (state.capacity, state.sure, state.slots, state.quiet) == (20.0, True, 3.5, 18.5)
    assert state.bins == before.bins and state.slot_bins == before.slot_bins
    assert (state.rate_mean, state.rate_var, state.rate_at) == (80.0, 100.0, later)
    assert state.rate_since == later - 3000
    assert state.over_share == 0.004
    # a job process's bursts at the same ages on the new clock; none is followed as draining
    assert state.bursts == ((later - 7200, 6, 900.0, False), (later - 3600, 7, 1000.0, False))
    assert (state.known, state.below_since, state.last_up, state.last_change) == (
        None,
        None,
        None,
        later - 100,
    )


def test_a_restored_daemon_uses_the_forecast_at_once():
    data = snapshot(learned(), T)
    state = restore(PolicyState(), data, 0.0)
    decision, _ = decide(
        PolicyConfig(high=40), state, Observation(3, 100.0, rate_per_s=150.0), Instant(1.0, 1.7e9)
    )
    assert (decision.action, decision.reason) == (Action.UP, Reason.FORECAST)
    fresh, _ = decide(
        PolicyConfig(high=40),
        PolicyState(),
        Observation(3, 100.0, rate_per_s=150.0),
        Instant(1.0, 1.7e9),
    )
    assert fresh.action is Action.HOLD


def test_a_snapshot_of_an_earlier_version_restores_what_it_has():
    v4 = {k: v for k, v in GOOD.items() if k != "over_share"} | {"version": 4}
    state = restore(PolicyState(), v4, T)
    assert (state.capacity, state.quiet, state.over_share) == (20.0, 18.5, None)
    v3 = {k: v for k, v in v4.items() if k != "quiet"} | {"version": 3}
    state = restore(PolicyState(), v3, T)
    assert (state.capacity, state.quiet, len(state.bursts)) == (20.0, None, 2)
    v2 = {k: v for k, v in v3.items() if k != "bursts"} | {"version": 2}
    state = restore(PolicyState(), v2, T)
    assert (state.capacity, state.bursts) == (20.0, ())
    v1 = {k: v for k, v in v2.items() if k != "boots"} | {"version": 1}
    assert restore(PolicyState(), v1, T).capacity == 20.0


def test_the_snapshot_is_bounded():
    bins = dict.fromkeys(range(5 * MAX_BINS), (10.0, 3))
    data = snapshot(PolicyState(bins=bins), T)
    assert len(data["bins"]) == MAX_BINS
    assert len(json.dumps(data)) < 20_000


GOOD = snapshot(learned(), T)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        "capacity",
        {**GOOD, "version": VERSION + 1},
        {k: v for k, v in GOOD.items() if k != "bins"},
        {**GOOD, "capacity": -1.0},
        {**GOOD, "capacity": float("nan")},
        {**GOOD, "capacity": "20"},
        {**GOOD, "sure": "yes"},
        {**GOOD, "capacity": None, "sure": True},
        {**GOOD, "bins": [[1, 2.0]]},
        {**GOOD, "bins": [[1.5, 2.0, 3]]},
        {**GOOD, "bins": [[1, 2.0, 0]]},
        {**GOOD, "bins": [[k, 2.0, 3] for k in range(MAX_BINS + 1)]},
        {**GOOD, "rate_var": float("inf")},
        {**GOOD, "quiet": -2.0},
        {**GOOD, "quiet": "18"},
        {k: v for k, v in GOOD.items() if k != "quiet"},
        {**GOOD, "bursts": [[10.0, 0, 5.0]]},
        {**GOOD, "bursts": [[10.0, 2.0, 5.0]]},
        {**GOOD, "bursts": [[-1.0, 2, 5.0]]},
        {**GOOD, "bursts": [[10.0, 2]]},
        {**GOOD, "bursts": [[10.0, 2, 5.0], [20.0, 2, 5.0]]},  # ages must fall
        {**GOOD, "bursts": [[float(100 - i), 2, 5.0] for i in range(17)]},
        {k: v for k, v in GOOD.items() if k != "bursts"},
        {**GOOD, "over_share": 1.5},
        {**GOOD, "over_share": -0.01},
        {**GOOD, "over_share": "0.01"},
        {k: v for k, v in GOOD.items() if k != "over_share"},
    ],
)
def test_an_invalid_snapshot_is_ignored(bad):
    state = PolicyState(last_change=5.0)
    assert restore(state, bad, T) is state


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_restore_never_raises(data):
    state = PolicyState()
    restored = restore(state, data, T)
    assert restored is state or restored.capacity is None or restored.capacity > 0


def test_what_is_learned_is_summarised_for_the_log_and_the_dashboard():
    from autoscaler.policy import learned as summary

    assert summary(PolicyState()) == {}
    hourly = tuple((T + 3600.0 * k, 6, 900.0, False) for k in range(4))
    state = PolicyState(
        capacity=20.04, sure=False, quiet=31.26, slots=3.46, boot=44.96, bursts=hourly
    )
    assert summary(state) == {
        "capacity": 20.0,
        "capacity_sure": False,
        "carried_quietly": 31.3,
        "slots": 3.5,
        "boot_s": 45.0,
        "bursts_every_s": 3600,
    }
    assert "bursts_every_s" not in summary(PolicyState(bursts=hourly[:3]))  # no schedule yet
    # once what one instance carries is sure, a floor carried quietly no longer sizes anything
    assert "carried_quietly" not in summary(PolicyState(capacity=20.0, sure=True, quiet=31.3))


def test_the_headroom_in_force_is_summarised_for_a_web_process_only():
    from autoscaler.policy import learned as summary

    web = PolicyState(over_share=SHARE_BUDGET / 4)  # a quarter of the budget: a quarter kept
    assert "headroom" not in summary(web)  # without the process's config: nothing to scale
    assert summary(web, PolicyConfig(headroom=2.0)) == {
        "above_band_pct": round(25.0 * SHARE_BUDGET, 2),
        "headroom": 0.5,
    }
    assert summary(PolicyState(over_share=0.03), PolicyConfig(headroom=2.0))["headroom"] == 2.0
    worker = PolicyConfig(headroom=2.0, scale_from_zero=True, low=0)
    assert summary(web, worker) == {}  # a job process's forecast is its bursts, not the rate
