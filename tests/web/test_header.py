"""The request-start header parser: every platform's form, and garbage never becomes a sample."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.web import header
from autoscaler.web.header import ABSENT, FUTURE, GARBAGE, OK, PAST, SKEW, queue_ms

NOW_MS = 1_764_200_000_000.0  # 2025-11-26 23:33:20 UTC
START_MS = NOW_MS - 123.0  # 123 ms of queueing in every unit below


@pytest.mark.parametrize(
    ("raw", "expected_ms", "outcome"),
    [
        # Heroku router and Railway edge: integer ms, no prefix
        ("1764199999877", 123.0, OK),
        (b"1764199999877", 123.0, OK),
        # Thruster: t=<ms>
        ("t=1764199999877", 123.0, OK),
        # nginx: t=${msec}, fractional seconds
        ("t=1764199999.877", 123.0, OK),
        ("1764199999.877", 123.0, OK),
        # Apache %t: t=<µs>
        ("t=1764199999877000", 123.0, OK),
        # Render: integer ns (or µs)
        ("1764199999877000000", 123.0, OK),
        ("1764199999877000", 123.0, OK),
        # seconds with µs decimals, surrounding space, header set twice and joined by the server
        (" t=1764199999.877000 ", 123.0, OK),
        ("1764199999877, 1764199999999", 123.0, OK),
        ("T=1764199999877", 123.0, OK),
        # several values (issue 14 item 7): the earliest start that fits a unit counts
        ("servera t=1764199999877000, serverb t=1764199999977000", 123.0, OK),
        ("serverb t=1764199999977000, servera t=1764199999877000", 123.0, OK),
        ("t=1764199999.977, 1764199999877", 123.0, OK),  # two proxies, two units
        ("1764199999977,1764199999877", 123.0, OK),
        ("garbage, t=1764199999877", 123.0, OK),
        ("1764200000500, 1764199999877", 123.0, OK),  # a skewed stamp and a good one
        ("1764199300000, t=1764199999877", 123.0, OK),  # one too old to be queueing
        # Apache RequestHeader set X-Request-Start "%t %D": t=<µs> D=<µs>
        ("t=1764199999877000 D=1500", 123.0, OK),
        ("\tt=1764199999877000\tD=1500 ", 123.0, OK),
        # router clock a little ahead of the app's: clamped to 0 and counted
        ("1764200000500", 0.0, SKEW),
        ("t=1764200009.9", 0.0, SKEW),
        # far in the future or the past in every unit: dropped, never clamped
        ("1764200020000", None, FUTURE),
        ("1864200000000", None, FUTURE),
        ("99999999999999999999", None, FUTURE),
        ("1764199300000", None, PAST),  # 700 s ago
        ("0", None, PAST),
        ("1", None, PAST),
        ("946684800000", None, PAST),  # 2000-01-01 in ms
        # not numbers in the accepted grammar
        ("", None, GARBAGE),
        ("t=", None, GARBAGE),
        ("-1764199999877", None, GARBAGE),
        ("1e12", None, GARBAGE),
        ("1_764_199_999_877", None, GARBAGE),
        ("inf", None, GARBAGE),
        ("nan", None, GARBAGE),
        ("0x1A", None, GARBAGE),
        ("1764199999877ms", None, GARBAGE),
        ("１７６４１９９９９９８７７", None, GARBAGE),  # full-width digits that float() accepts
        ("t=t=1764199999877", None, GARBAGE),
        ("123456789012345678901", None, GARBAGE),  # 21 digits
        ("servera 1764199999877", None, GARBAGE),  # words but no t=
        ("t=1764199999877 t=1764199999877", None, GARBAGE),  # which one?
        ("D=1500", None, GARBAGE),
        ("1764199300000, 0", None, PAST),  # none fits: the first value's reason
        ("garbage, 1764200020000", None, GARBAGE),
        (None, None, ABSENT),
    ],
)
def test_each_platform_form_parses_to_the_queue_time_or_a_named_drop(
    raw: str | bytes | None, expected_ms: float | None, outcome: str
) -> None:
    ms, got = queue_ms(raw, NOW_MS)
    assert got == outcome
    if expected_ms is not None:
        assert ms == pytest.approx(expected_ms, abs=0.01)


def test_the_band_edges_are_inclusive_of_the_past_limit_and_drop_just_beyond_it() -> None:
    assert queue_ms(str(int(NOW_MS - header.PAST_MS)), NOW_MS) == (header.PAST_MS, OK)
    assert queue_ms(str(int(NOW_MS - header.PAST_MS - 1)), NOW_MS)[1] == PAST
    assert queue_ms(str(int(NOW_MS + header.FUTURE_MS)), NOW_MS) == (0.0, SKEW)
    assert queue_ms(str(int(NOW_MS + header.FUTURE_MS + 1)), NOW_MS)[1] == FUTURE


def test_only_the_first_values_of_a_long_list_are_read() -> None:
    values = ["x"] * (header.MAX_VALUES - 1)
    assert queue_ms(",".join([*values, "1764199999877"]), NOW_MS) == (123.0, OK)
    assert queue_ms(",".join([*values, "x", "1764199999877"]), NOW_MS) == (0.0, GARBAGE)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_and_a_sample_is_always_a_plausible_queue_time(
    raw: bytes,
) -> None:
    ms, outcome = queue_ms(raw, NOW_MS)
    assert outcome in (OK, SKEW, GARBAGE, FUTURE, PAST)
    if outcome == OK:
        assert 0.0 <= ms <= header.PAST_MS
        values = [v.strip().split()[-1:] for v in raw.split(b",")]
        stamps = [v[0].removeprefix(b"t=").removeprefix(b"T=") for v in values if v]
        assert any(s and all(c in b"0123456789." for c in s) for s in stamps)
    elif outcome == SKEW:
        assert ms == 0.0


@given(st.text(max_size=40))
def test_arbitrary_text_never_raises(raw: str) -> None:
    _, outcome = queue_ms(raw, NOW_MS)
    assert outcome in (OK, SKEW, GARBAGE, FUTURE, PAST)


@given(
    st.floats(min_value=0.0, max_value=header.PAST_MS),
    st.sampled_from([(0.001, "{:.3f}"), (1.0, "{:.0f}"), (1000.0, "{:.0f}"), (1e6, "{:.0f}")]),
    st.booleans(),
)
def test_any_plausible_start_in_any_unit_reads_back_within_a_millisecond(
    waited: float, unit: tuple[float, str], prefix: bool
) -> None:
    per_ms, fmt = unit
    raw = ("t=" if prefix else "") + fmt.format((NOW_MS - waited) * per_ms)
    ms, outcome = queue_ms(raw, NOW_MS)
    if outcome == PAST:  # rounding pushed it just past the limit
        assert waited > header.PAST_MS - 1
        return
    assert outcome == OK
    assert ms == pytest.approx(waited, abs=1.0)
