"""The v1 wire format: buckets, encoding, validation, and percentiles of merged histograms."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.web import wire


def _encoded(values: list[float], publisher: str = "web.1:1", t: float = 1000.0) -> str:
    hist = wire.Histogram()
    for v in values:
        hist.add(v)
    return wire.encode(
        hist,
        publisher=publisher,
        t=t,
        interval=5.0,
        keep=300.0,
        requests=len(values) + 1,
        busy=2,
        skew=0,
        drops={"absent": 1, "past": 0},
    )


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@given(st.floats(min_value=1.0, max_value=600_000.0))
def test_a_bucket_reads_back_within_one_percent_of_any_value_in_it(ms: float) -> None:
    assert wire.bucket_value(wire.bucket_of(ms)) == pytest.approx(ms, rel=0.0100001)


def test_values_under_a_millisecond_share_bucket_zero() -> None:
    assert {wire.bucket_of(v) for v in (0.0, 0.3, 0.999)} == {0}
    assert wire.bucket_of(1.0) == 1
    assert wire.bucket_of(600_000.0) < wire.MAX_BUCKET


def test_an_aggregate_round_trips_through_the_wire() -> None:
    agg = wire.decode(_encoded([0.2, 12.0, 12.1, 250.0]))
    assert (agg.publisher, agg.t, agg.keep, agg.requests, agg.count) == (
        "web.1:1",
        1000.0,
        300,
        5,
        4,
    )
    assert agg.total_ms == pytest.approx(274.3)
    assert agg.max_ms == 250.0
    assert agg.buckets[0::2] == sorted(agg.buckets[0::2])
    assert sum(agg.buckets[1::2]) == 4
    assert (agg.busy, agg.skew, agg.drops) == (2, 0, {"absent": 1})


def test_a_heartbeat_is_an_aggregate_with_no_samples() -> None:
    agg = wire.decode(_encoded([]))
    assert (agg.count, agg.buckets, agg.max_ms) == (0, [], 0.0)
    assert wire.merge([agg]).value("p95") == 0.0


def test_a_minimal_publisher_from_another_language_is_accepted() -> None:
    # only the required fields, as the README's Rack/Express recipe writes them
    agg = wire.decode('{"v":1,"t":1000.5,"n":2,"s":30.5,"m":20.0,"b":[140,1,152,1]}')
    assert (agg.count, agg.requests, agg.busy, agg.drops) == (2, 2, 0, {})


GOOD = json.loads(_encoded([5.0, 7.0]))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"v": 2}, "wire version 2"),
        ({"v": "1"}, "wire version '1'"),
        ({"n": 3}, "buckets hold 2 samples"),
        ({"n": -2}, "'n'"),
        ({"n": 2.5}, "'n'"),
        ({"t": "now"}, "'t'"),
        ({"s": float("nan")}, "'s'"),
        ({"m": None}, "'m'"),
        ({"b": [82, 1, 99]}, "pairs"),
        ({"b": [82, -1, 99, 3]}, "non-negative"),
        ({"b": [82, True, 99, 1]}, "non-negative"),
        ({"b": [5000, 2]}, "above"),
        ({"b": "82,1"}, "pairs"),
        ({"drop": {"past": -1}}, "'drop'"),
        ({"drop": [1]}, "'drop'"),
    ],
)
def test_anything_but_valid_v1_data_is_rejected_with_the_field_named(
    change: dict[str, object], why: str
) -> None:
    doc = {**GOOD, **change}
    with pytest.raises(wire.WireError, match=why):
        wire.decode(json.dumps(doc))


@pytest.mark.parametrize("member", [b"", b"\xff\xfe", b"[]", b"null", b"{", b'"v"'])
def test_non_json_or_non_objects_are_rejected(member: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(member)


def test_percentiles_of_merged_processes_match_the_pooled_samples_not_an_average() -> None:
    rng = random.Random(7)
    # one busy slow process and three fast ones: averaging per-process p95s would be far off
    slow = [rng.uniform(300, 900) for _ in range(200)]
    fast = [[rng.uniform(1, 20) for _ in range(600)] for _ in range(3)]
    members = [_encoded(slow, "web.1:1")] + [_encoded(f, f"web.{i}:1") for i, f in enumerate(fast)]
    merged = wire.merge(wire.decode(m) for m in members)
    pooled = slow + [v for f in fast for v in f]
    assert merged.count == len(pooled)
    for q in (0.5, 0.9, 0.95, 0.99):
        assert merged.percentile(q) == pytest.approx(_nearest_rank(pooled, q), rel=0.011)
    assert merged.value("max") == pytest.approx(max(pooled), abs=0.001)
    assert merged.value("avg") == pytest.approx(sum(pooled) / len(pooled), rel=1e-6)


@given(st.lists(st.floats(min_value=0.0, max_value=600_000.0), min_size=1, max_size=200))
def test_any_percentile_is_within_one_percent_of_the_exact_nearest_rank(
    values: list[float],
) -> None:
    merged = wire.merge([wire.decode(_encoded(values))])
    for aggregate, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        exact = _nearest_rank(values, q)
        got = merged.value(aggregate)
        assert got <= max(values) + 0.001
        assert got == pytest.approx(exact, rel=0.0101, abs=0.5)


def test_merging_is_independent_of_order() -> None:
    aggs = [wire.decode(_encoded([float(i), i * 3.5, 700.0 - i])) for i in range(20)]
    forward, backward = wire.merge(aggs), wire.merge(reversed(aggs))
    assert forward.buckets == backward.buckets
    assert forward.value("p95") == backward.value("p95")
