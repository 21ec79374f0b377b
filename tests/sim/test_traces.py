"""Reading traces: both shipped slices, the accepted shapes, and every malformed file named by
line and reason."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import pytest

from autoscaler.sim import columnar, traces
from autoscaler.sim.traces import Trace, TraceError, read_trace, scaled, to_steps

from .forking import stdio_stuck_in_children

DATA = Path(__file__).parent.parent / "data" / "traces"


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_the_world_cup_slice() -> None:
    trace = read_trace(DATA / "wc98-slice-6h.csv")
    assert trace.width == 60.0
    assert len(trace.counts) == 360
    assert trace.start == 894944400.0  # 1998-05-12T03:40:00Z
    assert max(trace.counts) == 57509
    assert trace.service_ms is None


def test_reads_the_gzipped_nasa_slice() -> None:
    trace = read_trace(DATA / "nasa-slice-2h.csv.gz")
    assert trace.width == 1.0
    assert len(trace.counts) == 7200
    assert trace.total == 27903


def test_epoch_seconds_service_column_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "time,requests,service_ms\r\n100,5,80\r\n110,0,\r\n120,7,120\r\n")
    trace = read_trace(path)
    assert (trace.start, trace.width, list(trace.counts)) == (100.0, 10.0, [5.0, 0.0, 7.0])
    assert trace.service_ms is not None
    assert trace.service_ms[0] == 80.0 and trace.service_ms[2] == 120.0
    assert trace.service_ms[1] != trace.service_ms[1]  # NaN: the default applies


def test_columns_in_any_order_naive_times_as_utc_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "requests,time\n3,2024-01-01T00:00:00\n\n4,2024-01-01T00:01:00\n")
    trace = read_trace(path)
    assert trace.start == 1704067200.0
    assert list(trace.counts) == [3.0, 4.0]


def test_gzip_is_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"time,requests\n0,1\n1,2\n"))
    assert list(read_trace(path).counts) == [1.0, 2.0]


HEADER = "time,requests\n"

MALFORMED = [
    ("", 1, "header is missing"),
    ("when,requests\n0,1\n1,1\n", 1, "no 'time' column"),
    ("time,count\n0,1\n1,1\n", 1, "no 'requests' column"),
    (HEADER + "0,1\n1,x\n", 3, "is not a number"),
    (HEADER + "0,1\n1,-2\n", 3, "must be 0 or more"),
    (HEADER + "0,1\n1,nan\n", 3, "must be 0 or more"),
    (HEADER + "0,1\n1,1\n3,1\n", 4, "bin of 2 s where the bins are 1 s wide"),
    (HEADER + "0,1\n1,1\n1,1\n", 4, "does not increase"),
    (HEADER + "5,1\n5,1\n", 3, "does not increase"),
    (HEADER + "0,1\n1,1,1\n", 3, "3 fields where the header has 2"),
    (HEADER + "0,1\nyesterday,1\n", 3, "neither ISO-8601 nor epoch seconds"),
    (HEADER + "0,1\n", 0, "at least two rows"),
    ("time,requests,service_ms\n0,1,5\n1,1,-5\n", 3, "service_ms '-5' must be above 0"),
    ("time,requests,service_ms\n0,1,5\n1,1,fast\n", 3, "is not a number"),
]


@pytest.mark.parametrize(("text", "line", "reason"), MALFORMED)
def test_malformed_files_name_the_line_and_reason(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        read_trace(path)
    assert info.value.line == line
    assert reason in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        read_trace(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(TraceError, match="cannot be read"):
        read_trace(bad)


@pytest.mark.parametrize("columnar_on", [True, False])
def test_a_byte_that_is_not_utf8_past_the_header_is_named(
    tmp_path: Path, columnar_on: bool, columnar_always: None
) -> None:
    # only the header of a plain ASCII file is decoded; any other file is checked whole
    path = tmp_path / "t.csv"
    path.write_bytes(b"time,requests\n0,1\n1,2\n2,\xff\n")
    with pytest.raises(TraceError, match="is not UTF-8 text"):
        read_trace(path, columnar=columnar_on)


def trace(counts: list[float], width: float) -> Trace:
    from array import array

    return Trace("mem", 0.0, width, array("d", counts), None)


def test_steps_sum_fine_bins_and_split_wide_ones() -> None:
    fine = to_steps(trace([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1.0), 5.0, 0.0, 0.1)
    assert fine.rates == [3.0, 8.0]  # (1+..+5)/5 and (6+..+10)/5 requests per second
    wide = to_steps(trace([60, 120], 60.0), 5.0, 0.0, 0.1)
    assert len(wide) == 24
    assert wide.rates[:12] == pytest.approx([1.0] * 12)
    assert wide.rates[12:] == pytest.approx([2.0] * 12)
    odd = to_steps(trace([30, 30, 30], 3.0), 2.0, 0.0, 0.1)  # steps straddle bins
    assert sum(r * 2.0 for r in odd.rates) == pytest.approx(90.0)


def test_smoothing_spreads_a_spike_but_keeps_the_volume() -> None:
    counts = [0.0] * 60 + [600.0] + [0.0] * 59
    raw = to_steps(trace(counts, 1.0), 5.0, 0.0, 0.1)
    smooth = to_steps(trace(counts, 1.0), 5.0, 60.0, 0.1)
    assert max(smooth.rates) < max(raw.rates) / 5
    assert sum(smooth.rates) == pytest.approx(sum(raw.rates), rel=0.01)
    assert scaled(smooth, 3.0).rates == [3.0 * r for r in smooth.rates]


def test_per_bin_service_times_are_weighted_by_requests(tmp_path: Path) -> None:
    path = write(tmp_path, "time,requests,service_ms\n0,1,100\n1,3,200\n2,0,\n3,0,50\n")
    steps = to_steps(read_trace(path), 2.0, 0.0, 0.3)
    assert steps.service_s is not None
    assert steps.service_s[0] == pytest.approx((100 + 3 * 200) / 4 / 1000)
    assert steps.service_s[1] == pytest.approx((300 + 50) / 2 / 1000)  # no requests: plain mean


def seconds_file(tmp_path: Path, times: list[str], newline: str = "\r\n") -> Path:
    rows = [f"{t},{i % 7}" for i, t in enumerate(times)]
    return write(tmp_path, newline.join(["time,requests", *rows]) + newline)


def iso_seconds(n: int) -> list[str]:
    return [f"1995-07-01T04:{i // 60:02d}:{i % 60:02d}Z" for i in range(n)]


def test_a_regular_crlf_file_of_seconds_reads_in_bulk(tmp_path: Path) -> None:
    trace = read_trace(seconds_file(tmp_path, iso_seconds(600)))
    assert (trace.width, len(trace.counts), trace.start) == (1.0, 600, 804571200.0)
    assert list(trace.counts[:8]) == [0, 1, 2, 3, 4, 5, 6, 0]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("1995-07-01T04:03:5xZ", "neither ISO-8601 nor epoch seconds"),
        ("1995-07-01T04:03:59Z", "time does not increase"),
        ("1995-07-01T04:04:03Z", "bin of 4 s where the bins are 1 s wide"),
    ],
)
def test_one_bad_time_among_regular_ones_is_named(tmp_path: Path, bad: str, reason: str) -> None:
    times = iso_seconds(600)
    times[240] = bad  # was 04:04:00, the 241st row, on line 242
    with pytest.raises(TraceError) as info:
        read_trace(seconds_file(tmp_path, times))
    assert reason in str(info.value)
    assert info.value.line == 242


def test_a_leap_second_reads_as_the_next_minute(tmp_path: Path) -> None:
    times = iso_seconds(600)
    times[240] = "1995-07-01T04:03:60Z"  # out of range for the bulk check; the full parse allows it
    assert len(read_trace(seconds_file(tmp_path, times)).counts) == 600


def test_a_long_file_checks_its_times_in_the_background(tmp_path: Path) -> None:
    times = [str(1_000_000 + i) for i in range(120_000)]
    assert len(read_trace(seconds_file(tmp_path, times, "\n")).counts) == 120_000
    times[100_000] = str(1_000_000 + 99_998)
    with pytest.raises(TraceError) as info:
        read_trace(seconds_file(tmp_path, times, "\n"))
    assert info.value.line == 100_002
    assert "does not increase" in str(info.value)


def test_the_background_check_exits_without_flushing_the_parents_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forked checker must leave at once: a child that flushed stdio on its way out could
    wait forever on a stream lock another thread held when it was forked, and the reader with
    it (seen in the test suite, whose fake servers' threads write tracebacks to stderr)."""
    stdio_stuck_in_children(monkeypatch)
    path = seconds_file(tmp_path, [str(1_000_000 + i) for i in range(120_000)], "\n")
    done: list[int] = []
    reader = threading.Thread(target=lambda: done.append(len(read_trace(path).counts)))
    reader.daemon = True
    reader.start()
    reader.join(30)
    assert done == [120_000]


# --- the columnar reader (pyarrow, the ``sim`` extra) against the pure-Python readers ---------


def outcome(path: Path, *, columnar: bool) -> tuple[object, ...]:
    """What reading ``path`` gives: the trace's every value, or the error's message."""
    try:
        got = read_trace(path, columnar=columnar)
    except TraceError as exc:
        return ("error", exc.line, str(exc))
    service = None if got.service_ms is None else got.service_ms.tobytes()
    return (got.start, got.width, got.counts.tobytes(), service)


def columnar_alone(path: Path) -> columnar.Columns | None:
    """What the columnar reader makes of ``path`` by itself (``None``: it declines)."""
    raw = traces._open_bytes(path)
    header = [h.strip().lower() for h in raw.decode("utf-8-sig").split("\n")[0].split(",")]
    return columnar.read(header, raw)


@pytest.fixture
def columnar_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file, however small, goes to the columnar reader first."""
    monkeypatch.setattr(traces, "COLUMNAR_MIN_BYTES", 0)


def test_the_columnar_reader_reads_both_shipped_slices_as_the_pure_one() -> None:
    for name in ("wc98-slice-6h.csv", "nasa-slice-2h.csv.gz"):
        path = DATA / name
        fast = columnar_alone(path)
        assert fast is not None, name
        pure = read_trace(path, columnar=False)
        assert (fast[0], fast[1]) == (pure.start, pure.width)
        assert fast[2].tobytes() == pure.counts.tobytes()


ACCEPTED = [
    "time,requests\n100,5\n110,0\n120,7\n",
    "time,requests\n0.5,1\n1.0,2.5\n1.5,0\n",
    "requests,time\n3,2024-01-01T00:00:00\n4,2024-01-01T00:01:00\n5,2024-01-01T00:02:00\n",
    "time,requests\n2024-01-01T00:00:00Z,1\n2024-01-01T00:00:10Z,2\n2024-01-01T00:00:20Z,3\n",
    "time,requests\n2024-01-01T02:00:00+02:00,1\n2024-01-01T03:00:00+02:00,2\n",
    "time,requests\n2024-01-01 00:00:00,1\n2024-01-01 00:00:07,2\n2024-01-01 00:00:14,2\n",
    "time,requests,service_ms\r\n100,5,80\r\n110,0,\r\n120,7,120.5\r\n",
    "\ufefftime,requests\n0,1\n\n1,2\n2,1e3\n",
    "time,requests\n0,-0.0\n1,7\n",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_the_columnar_reader_gives_the_pure_readers_trace(
    tmp_path: Path, text: str, columnar_always: None
) -> None:
    path = write(tmp_path, text)
    assert columnar_alone(path) is not None  # it read this one itself
    assert outcome(path, columnar=True) == outcome(path, columnar=False)
    assert outcome(path, columnar=True)[0] != "error"


DECLINED = [
    'time,requests\n0,"5"\n1,6\n',  # quoted: the pure reader refuses it, so must this one
    "time,requests,service_ms\n0,1,NA\n1,1,5\n",
    "time,requests,service_ms\n0,1,\n1,1,\n",  # every service time left empty
    "time,requests,service_ms\n0,1,nan\n1,1,5\n",
    "time,requests\n0,1\n1,inf\n",
    "time,requests\n0,1\n1,\n",
    "time,requests,note\n0,1,a\n1,1,b\n",
    "time,requests\n1995-07-01T04:03:59Z,1\n1995-07-01T04:03:60Z,1\n1995-07-01T04:04:01Z,1\n",
    "time,requests\n2024-01-01T00:00:00.5,1\n2024-01-01T00:00:01.0,1\n",
    "time,requests\n0,1\r1,2\r",
    "time,requests\r\n0,1\r\n1,2\r",  # the last line break a lone carriage return
    "time,requests\r\n0,1\r\r\n1,2\r\n",  # one within CRLF lines
    "time,requests\n0,1\n1,1_000\n",
    "time,requests\n0,1\n2,1\n3,1\n",
    "time,requests\n0,true\n1,false\n",
]


@pytest.mark.parametrize("text", DECLINED)
def test_what_the_columnar_reader_is_not_sure_of_the_pure_one_decides(
    tmp_path: Path, text: str, columnar_always: None
) -> None:
    path = write(tmp_path, text)
    assert columnar_alone(path) is None
    assert outcome(path, columnar=True) == outcome(path, columnar=False)


@pytest.mark.parametrize(("text", "line", "reason"), MALFORMED)
def test_with_the_columnar_reader_malformed_files_still_name_the_line_and_reason(
    tmp_path: Path, text: str, line: int, reason: str, columnar_always: None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        read_trace(path)
    assert info.value.line == line
    assert reason in str(info.value)
    assert outcome(path, columnar=True) == outcome(path, columnar=False)


def test_large_files_go_to_the_columnar_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = columnar.read

    def spy(header: list[str], raw: bytes) -> columnar.Columns | None:
        got = real(header, raw)
        assert got is not None
        seen.append(len(raw))
        return got

    monkeypatch.setattr(columnar, "read", spy)
    small = write(tmp_path, "time,requests\n0,1\n1,2\n", "small.csv")
    rows = "".join(f"{1_000_000 + i},{i % 9}\n" for i in range(200_000))
    large = write(tmp_path, "time,requests\n" + rows, "large.csv")
    assert len(large.read_bytes()) >= traces.COLUMNAR_MIN_BYTES
    read_trace(small)
    assert seen == []
    assert outcome(large, columnar=True) == outcome(large, columnar=False)
    assert seen == [len(large.read_bytes())]
    seen.clear()
    read_trace(large, columnar=False)
    assert seen == []


def test_without_pyarrow_the_pure_reader_reads_large_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columnar_always: None
) -> None:
    real = traces.importlib.util.find_spec

    def no_pyarrow(name: str, *args: object) -> object:
        return None if name == "pyarrow" else real(name, *args)

    def must_not_run(header: list[str], raw: bytes) -> None:
        raise AssertionError("the columnar reader ran without pyarrow")

    monkeypatch.setattr(traces.importlib.util, "find_spec", no_pyarrow)
    monkeypatch.setattr(columnar, "read", must_not_run)
    path = write(tmp_path, "time,requests\n0,1\n1,2\n")
    assert list(read_trace(path).counts) == [1.0, 2.0]
