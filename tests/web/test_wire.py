"""The v1 wire format: buckets, slot increments, validation, and percentiles of merged data."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.web import wire

from .helpers import flush, nearest_rank, slot_hash


@given(st.floats(min_value=1.0, max_value=600_000.0))
def test_a_bucket_reads_back_within_one_percent_of_any_value_in_it(ms: float) -> None:
    assert wire.bucket_value(wire.bucket_of(ms)) == pytest.approx(ms, rel=0.0100001)


def test_values_under_a_millisecond_share_bucket_zero() -> None:
    assert {wire.bucket_of(v) for v in (0.0, 0.3, 0.999)} == {0}
    assert wire.bucket_of(1.0) == 1
    assert wire.bucket_of(600_000.0) < wire.MAX_BUCKET


def test_keys_are_per_process_per_five_second_slot() -> None:
    assert wire.slot_of(1_800_000_004.9) == wire.slot_of(1_800_000_000.0) == 360_000_000
    assert wire.slot_key("web", 360_000_000) == "autoscaler:queue_time:v1:web:360000000"
    assert wire.seen_key("web") == "autoscaler:queue_time:v1:web:seen"


def test_a_flush_becomes_hash_increments() -> None:
    inc = flush([0.2, 12.0, 12.1, 250.0], requests=6, busy=3, skew=1, drops={"absent": 2, "x": 0})
    k12 = wire.bucket_of(12.0)
    assert inc.ints == {"0": 1, str(k12): 2, str(wire.bucket_of(250.0)): 1, "n": 4, "r": 6,
                        "f": 1, "skew": 1, "d:absent": 2}  # fmt: skip
    assert inc.floats == {"s": pytest.approx(274.3), "busy": 3.0}
    assert inc.fixed == {"v": "1", "keep": "300"}


def test_a_heartbeat_only_counts_the_flush() -> None:
    inc = flush([])
    assert inc.ints == {"n": 0, "r": 0, "f": 1}
    assert inc.floats == {}
    slot = wire.decode_slot(slot_hash(inc))
    assert (slot.count, slot.flushes, slot.buckets) == (0, 1, {})
    assert wire.merge([slot]).value("p95") == 0.0


def test_busy_is_weighted_by_the_flush_interval_so_a_slot_holds_the_fleets_in_flight() -> None:
    # one process flushing every second with 4 in flight, one every 5 s with 2 in flight
    fast = [flush([], interval=1.0, busy=4) for _ in range(5)]
    slot = wire.decode_slot(slot_hash(*fast, flush([], busy=2)))
    assert slot.busy == pytest.approx(6.0)


def test_a_slot_hash_decodes_with_every_field() -> None:
    slot = wire.decode_slot(slot_hash(flush([5.0, 7.0], requests=3, drops={"past": 1})))
    assert (slot.count, slot.requests, slot.flushes, slot.keep) == (2, 3, 1, 300.0)
    assert slot.total_ms == pytest.approx(12.0)
    assert slot.drops == {"past": 1}
    assert sum(slot.buckets.values()) == 2


def test_unknown_fields_from_a_newer_compatible_publisher_are_ignored() -> None:
    fields = slot_hash(flush([5.0]))
    fields[b"future_field"] = b"whatever"
    assert wire.decode_slot(fields).count == 1


GOOD = slot_hash(flush([5.0, 7.0]))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({b"v": b"2"}, "wire version '2'"),
        ({b"v": None}, "wire version None"),
        ({b"n": b"3"}, "buckets hold 2 samples"),
        ({b"n": b"-2"}, "'n' is negative"),
        ({b"n": b"2.5"}, "'n'"),
        ({b"s": b"nan"}, "'s'"),
        ({b"s": b"lots"}, "'s'"),
        ({b"81": b"-1"}, "bucket"),
        ({b"81": b"one"}, "bucket"),
        ({b"5000": b"1"}, "bucket"),
        ({b"d:past": b"-1"}, "'d:past'"),
        ({b"busy": b"inf"}, "'busy'"),
        # counts no publisher can produce (issue 14 item 11)
        ({b"f": b"100001"}, "'f' is 100001"),
        ({b"r": str(10**30).encode()}, "'r' is 1000000000000000000000000000000"),
        ({b"r": b"1"}, "'r' \\(every request\\) is 1"),
        ({b"d:garbage": b"1"}, "1 request\\(s\\) were not sampled"),
        ({b"skew": b"3"}, "'skew' is 3"),
        ({b"bf": b"2"}, "'bf' is 2"),
        ({b"busy": b"1.3e6"}, "'busy' is 1.3e"),
        ({b"bs": b"7e6"}, "'bs' is 7e"),
        ({b"s": b"1e30"}, "'s' is 1e"),
        ({b"s": b"10"}, "'s' is 10 ms"),
        ({b"s": b"12.5"}, "'s' is 12.5 ms"),
    ],
)
def test_anything_but_valid_v1_data_is_rejected_with_the_field_named(
    change: dict[bytes, bytes | None], why: str
) -> None:
    fields = {**GOOD, **change}
    fields = {k: v for k, v in fields.items() if v is not None}
    with pytest.raises(wire.WireError, match=why):
        wire.decode_slot(fields)  # type: ignore[arg-type]


def test_counts_at_the_bounds_are_accepted() -> None:
    fields = {**GOOD, b"f": b"100000", b"r": b"600000000000", b"skew": b"2", b"bf": b"100000"}
    fields |= {b"busy": b"1.2e11", b"bs": b"6e11", b"s": b"11.88", b"d:lost": b"9000000"}
    slot = wire.decode_slot(fields)
    assert (slot.flushes, slot.requests, slot.busy_flushes) == (100_000, 600_000_000_000, 100_000)
    # samples lost over a long Redis outage: shown, not bounded per flush
    assert wire.decode_slot({**GOOD, b"d:lost": b"1000000000"}).drops == {"lost": 10**9}


def test_an_absurd_slot_with_consistent_fields_is_still_rejected() -> None:
    """n = r = bucket = 10**30 with a matching sum: reads as a valid 7 ms today."""
    big = 10**30
    k = str(wire.bucket_of(7.0)).encode()
    fields = {b"v": b"1", b"f": b"1", k: str(big).encode(), b"n": str(big).encode()}
    fields |= {b"r": str(big).encode(), b"s": repr(7.0 * big).encode(), b"keep": b"300"}
    with pytest.raises(wire.WireError, match="more than 6000000 requests per flush"):
        wire.decode_slot(fields)


def test_busy_time_is_an_optional_addition_counted_per_flush() -> None:
    old = flush([5.0])  # a publisher without busy time
    new = flush([5.0], busy_s=2.5)
    idle = flush([], busy_s=0.0)
    assert "bf" not in old.ints and "bs" not in old.floats
    assert (new.ints["bf"], new.floats["bs"]) == (1, 2.5)
    assert idle.ints["bf"] == 1 and "bs" not in idle.floats  # a zero is not written
    slot = wire.decode_slot(slot_hash(old, new, idle))
    assert (slot.flushes, slot.busy_flushes, slot.busy_s) == (3, 2, 2.5)
    assert wire.decode_slot(slot_hash(old)).busy_flushes == 0


@given(st.dictionaries(st.binary(max_size=8), st.binary(max_size=8), max_size=8))
def test_arbitrary_hashes_are_decoded_or_rejected_never_crash(fields: dict[bytes, bytes]) -> None:
    try:
        slot = wire.decode_slot(fields)
    except wire.WireError:
        return
    assert slot.count == sum(slot.buckets.values())


def test_percentiles_of_merged_processes_match_the_pooled_samples_not_an_average() -> None:
    rng = random.Random(7)
    # one slow process and three fast ones: averaging per-process p95s would be far off
    slow = [rng.uniform(300, 900) for _ in range(200)]
    fast = [[rng.uniform(1, 20) for _ in range(600)] for _ in range(3)]
    slots = [
        wire.decode_slot(slot_hash(flush(slow), flush(fast[0]))),
        wire.decode_slot(slot_hash(flush(fast[1]), flush(fast[2]))),
    ]
    merged = wire.merge(slots)
    pooled = slow + [v for f in fast for v in f]
    assert merged.count == len(pooled)
    for q in (0.5, 0.9, 0.95, 0.99, 1.0):
        assert merged.percentile(q) == pytest.approx(nearest_rank(pooled, q), rel=0.011)
    assert merged.value("max") == pytest.approx(max(pooled), rel=0.011)
    assert merged.value("avg") == pytest.approx(sum(pooled) / len(pooled), rel=1e-6)


@given(st.lists(st.floats(min_value=0.0, max_value=600_000.0), min_size=1, max_size=200))
def test_any_percentile_is_within_one_percent_of_the_exact_nearest_rank(
    values: list[float],
) -> None:
    merged = wire.merge([wire.decode_slot(slot_hash(flush(values)))])
    for aggregate, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
        assert merged.value(aggregate) == pytest.approx(
            nearest_rank(values, q), rel=0.0101, abs=0.5
        )


def test_merging_is_independent_of_order() -> None:
    slots = [wire.decode_slot(slot_hash(flush([float(i), i * 3.5, 700.0 - i]))) for i in range(20)]
    forward, backward = wire.merge(slots), wire.merge(reversed(slots))
    assert forward.buckets == backward.buckets
    assert forward.value("p95") == backward.value("p95")
