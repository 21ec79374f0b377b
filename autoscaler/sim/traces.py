"""Traffic traces: read a CSV (or CSV.gz) of arrivals per time bin and turn it into a rate.

Format (SPEC "Simulation traces"): a header, then one row per bin; columns ``time`` (ISO-8601,
or epoch seconds) and ``requests`` (arrivals in the bin), optionally ``service_ms`` (mean service
time in that bin); bins of equal width. A malformed file raises ``TraceError`` with the line
number and the reason.

``to_steps`` turns the counts into a mean arrival rate per simulation step: it integrates the
counts over each step, smooths them over ``smooth_s`` (a centred moving average: the counts are
samples of a rate, and their sampling noise is not traffic), and scales them.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import math
import multiprocessing
import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from operator import itemgetter, lt, sub
from pathlib import Path


class TraceError(ValueError):
    """A trace file that cannot be used; ``line`` is 1-based (0 when it is about the file)."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass
class Trace:
    path: str
    start: float  # epoch seconds of the first bin
    width: float  # seconds per bin
    counts: array[float]
    service_ms: array[float] | None  # per bin, NaN where the row left it empty

    @property
    def span_s(self) -> float:
        return self.width * len(self.counts)

    @property
    def total(self) -> float:
        return math.fsum(self.counts)


class _Times:
    """Parses ``time`` cells; the common ``YYYY-MM-DDTHH:MM:SS[Z]`` shape takes a fast path
    that parses each minute once."""

    def __init__(self) -> None:
        self._minutes: dict[str, float] = {}

    def parse(self, text: str) -> float:
        n = len(text)
        if ((n == 20 and text[19] == "Z") or n == 19) and text[10] == "T" and text[16] == ":":
            minute = self._minutes.get(text[:16])
            if minute is None:
                minute = self._slow(text[:16] + ":00")
                self._minutes[text[:16]] = minute
            seconds = text[17:19]
            if seconds.isdigit():
                return minute + int(seconds)
        return self._slow(text)

    @staticmethod
    def _slow(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            pass
        stamp = datetime.fromisoformat(text)  # raises ValueError
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()


def _open_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzipped (told by its content)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw


def _open_text(path: Path) -> str:
    return _open_bytes(path).decode("utf-8-sig")


def read_trace(path: str | Path, *, columnar: bool = True) -> Trace:
    """Read and validate a trace file: with pyarrow's CSV reader when it is installed (the
    ``sim`` extra) and ``columnar`` is on, and the file is one it reads; else, and for every
    error, with the pure-Python readers below (the same ``Trace``)."""
    name = str(path)
    try:
        raw = _open_bytes(Path(path))
        # plain ASCII (the common case) is UTF-8 as it is: only the header line is decoded
        # unless the pure-Python readers need the text
        text = None if raw.isascii() else raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise TraceError(name, 0, "no such file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TraceError(name, 0, f"cannot be read ({exc})") from None
    except UnicodeDecodeError:
        raise TraceError(name, 0, "is not UTF-8 text") from None
    if text is None:
        end = raw.find(b"\n")
        first = (raw if end < 0 else raw[:end]).decode("ascii").strip()
    else:
        first = text.split("\n", 1)[0].strip()
    if not first:
        raise TraceError(name, 1, "the header is missing (expected time,requests[,service_ms])")
    header = [h.strip().lower() for h in first.split(",")]
    for column in ("time", "requests"):
        if column not in header:
            raise TraceError(name, 1, f"no {column!r} column (the header is {first!r})")
    if columnar and (trace := _read_columnar(name, header, raw)) is not None:
        return trace
    if text is None:
        text = raw.decode("ascii")
    try:
        return _read_fast(name, header, text)
    except _Irregular:
        return _read_checked(name, header, text.splitlines())


#: files smaller than this (decompressed) are read by the pure-Python readers: they take well
#: under a tenth of a second for them, less than importing pyarrow does
COLUMNAR_MIN_BYTES = 2_000_000


def _read_columnar(name: str, header: list[str], raw: bytes) -> Trace | None:
    """The trace read by ``autoscaler.sim.columnar`` (pyarrow, the ``sim`` extra) when the file
    is large and pyarrow installed, or ``None``: the pure-Python readers decide."""
    if len(raw) < COLUMNAR_MIN_BYTES or importlib.util.find_spec("pyarrow") is None:
        return None
    from autoscaler.sim import columnar

    read = columnar.read(header, raw)
    return None if read is None else Trace(name, *read)


class _Irregular(Exception):
    """The bulk reader met something it does not handle: the checked reader says what."""


def _read_fast(name: str, header: list[str], text: str) -> Trace:
    """Read a well-formed file with whole-column operations (a month of seconds in about a
    second); anything unusual raises ``_Irregular``."""
    newline = "\r\n" if "\r\n" in text else "\n"
    body = text[text.index("\n") + 1 :].rstrip("\r\n")
    if newline + newline in body or (newline == "\r\n" and body.count("\n") != body.count("\r")):
        raise _Irregular  # blank or mixed lines: the checked reader handles them
    ncols = len(header)
    cells = body.replace(newline, ",").split(",")
    if len(cells) % ncols or len(cells) < 2 * ncols or body.count("\n") + 1 != len(cells) // ncols:
        raise _Irregular
    column = {h: cells[i::ncols] for i, h in enumerate(header)}
    times = column["time"]
    # the time column is checked in a forked process while this one parses the numbers
    axis = _in_background(_time_axis, times) if len(times) > 100_000 else None
    try:
        counts = _numbers(column["requests"])
        if min(counts) < 0:
            raise _Irregular
        try:
            service = (
                array("d", map(float, column["service_ms"])) if "service_ms" in column else None
            )
        except ValueError:
            raise _Irregular from None
        if service is not None and not all(map(_positive_finite, service)):
            raise _Irregular
    except _Irregular:
        if axis is not None:
            with contextlib.suppress(_Irregular):
                axis()  # reap the child
        raise
    start, width = axis() if axis is not None else _time_axis(times)
    return Trace(name, start, width, counts, service)


def _time_axis(times: list[str]) -> tuple[float, float]:
    """Start (epoch seconds) and width of a regular time column, or ``_Irregular``."""
    try:
        epochs = list(map(float, times))
    except ValueError:
        epochs = []
    if epochs:
        start = epochs[0]
        widths = set(map(sub, epochs[1:], epochs[:-1]))
        width = epochs[1] - epochs[0]
        if width <= 0 or max(widths) - min(widths) > 1e-6 * max(1.0, width):
            raise _Irregular
    elif (regular := _regular_iso(times)) is not None:
        start, width = regular
    else:
        try:
            stamps = list(map(datetime.fromisoformat, times))
            deltas = set(map(sub, stamps[1:], stamps[:-1]))
        except (ValueError, TypeError):
            raise _Irregular from None
        if len(deltas) != 1:
            raise _Irregular
        width = deltas.pop().total_seconds()
        first = stamps[0] if stamps[0].tzinfo else stamps[0].replace(tzinfo=UTC)
        start = first.timestamp()
        if width <= 0:
            raise _Irregular
    return start, width


def _in_background(
    fn: Callable[[list[str]], tuple[float, float]], arg: list[str]
) -> Callable[[], tuple[float, float]]:
    """Run ``fn(arg)`` in a forked process; the returned call waits for its result (or
    ``_Irregular``). Without ``fork`` it runs here, when the result is asked for."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return lambda: fn(arg)
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            send.send(fn(arg))
        except _Irregular:
            send.send(None)
        finally:
            # Leave at once: the interpreter's way out flushes stdio, whose locks another thread
            # of the parent may have held when this process was forked (and never will
            # release here). The parent reads the answer, or EOF, from the pipe.
            os._exit(0)

    process = ctx.Process(target=child, daemon=True)
    process.start()
    send.close()

    def result() -> tuple[float, float]:
        try:
            value: tuple[float, float] | None = receive.recv()
        except EOFError:  # the child died: do it here
            value = fn(arg)
        finally:
            process.join(5.0)
            if process.is_alive():  # stuck on its way out: its answer is in already
                process.kill()
                process.join()
            receive.close()
        if value is None:
            raise _Irregular
        return value

    return result


# bin width -> where the part of ``YYYY-MM-DDTHH:MM:SS`` that must not change starts
_ALIGNED = {1.0: 19, 60.0: 17, 3600.0: 14, 86400.0: 11}
_SHAPE = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}


def _regular_iso(times: list[str]) -> tuple[float, float] | None:
    """Start and width of ISO times that are plainly regular (one shape, one second, minute,
    hour or day apart, strictly increasing, as many as the span holds), checked with
    whole-column operations; ``None`` when the full parse must decide."""
    if times[0][10:11] != "T" or times[-1][10:11] != "T":
        return None
    first = times[0]
    n = len(first)
    if n not in (19, 20) or set(map(len, times)) != {n}:
        return None
    # each row has the separators of the shape, in order, and digits elsewhere; with one
    # length, strict order and the count checked below, a misplaced one cannot pass
    separators = "".join(_SHAPE.values()) + ("Z" if n == 20 else "")
    if "".join(times).translate(_NOT_DIGITS) != separators * len(times):
        return None
    if (
        max(map(itemgetter(slice(11, 13)), times)) > "23"
        or max(map(itemgetter(14), times)) > "5"
        or max(map(itemgetter(17), times)) > "5"
    ):
        return None  # an hour, minute or second out of range: the full parse names it
    try:
        a, b, z = (datetime.fromisoformat(t) for t in (first, times[1], times[-1]))
    except ValueError:
        return None
    width = (b - a).total_seconds()
    cut = _ALIGNED.get(width)
    if cut is None or (cut < 19 and len(set(map(itemgetter(slice(cut, 19)), times))) != 1):
        return None
    if (z - a).total_seconds() != width * (len(times) - 1) or not all(
        map(lt, times[:-1], times[1:])
    ):
        return None
    return (a if a.tzinfo else a.replace(tzinfo=UTC)).timestamp(), width


_NOT_DIGITS = str.maketrans("", "", "0123456789")


def _numbers(cells: list[str]) -> array[float]:
    """A column of finite numbers (whole ones parse faster), or ``_Irregular``."""
    try:
        return array("d", map(int, cells))
    except ValueError:
        pass
    try:
        values = array("d", map(float, cells))
    except ValueError:
        raise _Irregular from None
    if any(map(math.isnan, values)) or max(values) == math.inf:
        raise _Irregular
    return values


def _positive_finite(value: float) -> bool:
    return 0 < value < math.inf


class Rows:
    """The rows of a trace after its header, as ``(line number, time, cells)``: blank lines are
    skipped; a row with the wrong number of fields or a time that is neither ISO-8601 nor epoch
    seconds raises ``TraceError`` with its line number. Readers of binned traces call ``bin``
    on each row once they have judged the values they read before its time's spacing.

    One loop for every trace reader: requests per bin, jobs per bin, one row per job."""

    def __init__(self, name: str, header: list[str], lines: list[str]) -> None:
        self.name = name
        self.header = header
        self.lines = lines
        self.start = self.width = 0.0  # set by ``bin``
        self.bins = 0  # rows passed to ``bin``
        self._prev = 0.0

    def __iter__(self) -> Iterator[tuple[int, float, list[str]]]:
        name, ncols = self.name, len(self.header)
        i_time = self.header.index("time")
        times = _Times()
        for lineno, line in enumerate(self.lines[1:], start=2):
            if not line.strip():
                continue
            cells = line.split(",")
            if len(cells) != ncols:
                raise TraceError(name, lineno, f"{len(cells)} fields where the header has {ncols}")
            try:
                t = times.parse(cells[i_time].strip())
            except ValueError:
                raise TraceError(
                    name, lineno, f"time {cells[i_time]!r} is neither ISO-8601 nor epoch seconds"
                ) from None
            yield lineno, t, cells

    def bin(self, lineno: int, t: float) -> None:
        """Check that the row at ``t`` follows the previous one by one bin (the first two rows
        set ``start`` and ``width``)."""
        name, width, prev = self.name, self.width, self._prev
        if self.bins == 0:
            self.start = t
        elif self.bins == 1:
            self.width = t - prev
            if self.width <= 0:
                raise TraceError(name, lineno, "time does not increase")
        elif abs(t - prev - width) > 1e-6 * max(1.0, width):
            if t <= prev:
                raise TraceError(name, lineno, "time does not increase")
            raise TraceError(
                name, lineno, f"bin of {t - prev:g} s where the bins are {width:g} s wide"
            )
        self._prev = t
        self.bins += 1

    def number(self, lineno: int, cells: list[str], column: str) -> float:
        """The cell of ``column`` as a number, or ``TraceError`` naming it."""
        cell = cells[self.header.index(column)]
        try:
            return float(cell)
        except ValueError:
            raise TraceError(self.name, lineno, f"{column} {cell!r} is not a number") from None


def _read_checked(name: str, header: list[str], lines: list[str]) -> Trace:
    """Read row by row, naming the first line that is wrong and why."""
    i_svc = header.index("service_ms") if "service_ms" in header else -1
    counts: array[float] = array("d")
    service: array[float] | None = array("d") if i_svc >= 0 else None
    rows = Rows(name, header, lines)
    for lineno, t, cells in rows:
        count = rows.number(lineno, cells, "requests")
        if not count >= 0 or count == math.inf:
            cell = cells[header.index("requests")]
            raise TraceError(name, lineno, f"requests {cell!r} must be 0 or more")
        rows.bin(lineno, t)
        counts.append(count)
        if service is not None:
            service.append(_service(name, lineno, cells[i_svc]))
    if rows.bins < 2:
        raise TraceError(name, 0, "needs at least two rows to know the bin width")
    return Trace(name, rows.start, rows.width, counts, service)


def _service(name: str, lineno: int, cell: str) -> float:
    cell = cell.strip()
    if not cell:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise TraceError(name, lineno, f"service_ms {cell!r} is not a number") from None
    if not 0 < value < math.inf:
        raise TraceError(name, lineno, f"service_ms {cell!r} must be above 0")
    return value


def _integrate(values: array[float], width: float, dt: float, steps: int) -> list[float]:
    """Sum per-bin ``values`` (spread evenly inside each bin) over consecutive ``dt`` steps."""
    ratio = dt / width
    k = round(ratio)
    if k >= 1 and abs(ratio - k) < 1e-9:
        it = iter(values)
        sums = list(map(math.fsum, zip(*([it] * k), strict=False)))
        tail = len(values) - k * len(sums)
        if tail:
            sums.append(math.fsum(values[-tail:]))
        return sums[:steps]
    cum = [0.0]
    total = 0.0
    for v in values:
        total += v
        cum.append(total)
    nbins = len(values)

    def at(t: float) -> float:
        x = t / width
        i = int(x)
        if i >= nbins:
            return cum[nbins]
        return cum[i] + (x - i) * values[i]

    return [at((j + 1) * dt) - at(j * dt) for j in range(steps)]


def _smooth(values: list[float], k: int) -> list[float]:
    """Centred moving average over ``k`` values (shrinking at the ends)."""
    n = len(values)
    if k <= 1 or n == 0:
        return values
    k = min(k, n)
    cum = list(accumulate(values, initial=0.0))
    half = k // 2
    inv = 1.0 / k
    # values whose whole window fits: one C-level pass
    middle = list(map(inv.__mul__, map(sub, cum[k:], cum[: n - k + 1])))
    head = [cum[i - half + k] / (i - half + k) for i in range(min(half, n))]
    tail = [(cum[n] - cum[i - half]) / (n - i + half) for i in range(n - k + half + 1, n)]
    return head + middle + tail


@dataclass
class Steps:
    """A trace as the simulator runs it: per ``dt`` step, a mean arrival rate (requests/s,
    already smoothed and scaled) and a mean service time (s)."""

    dt: float
    rates: list[float]
    service_s: list[float] | None  # None: the same service time everywhere

    def __len__(self) -> int:
        return len(self.rates)


def to_steps(trace: Trace, dt: float, smooth_s: float, default_service_s: float) -> Steps:
    """Per-step mean rates (before scaling) and service times."""
    steps = max(1, math.ceil(trace.span_s / dt - 1e-9))
    sums = _integrate(trace.counts, trace.width, dt, steps)
    rates = [c / dt for c in sums]
    rates = _smooth(rates, max(1, round(smooth_s / dt)))
    service: list[float] | None = None
    if trace.service_ms is not None:
        filled = array(
            "d", (default_service_s * 1000 if math.isnan(v) else v for v in trace.service_ms)
        )
        weighted = array("d", (s * c for s, c in zip(filled, trace.counts, strict=True)))
        wsum = _integrate(weighted, trace.width, dt, steps)
        flat = _integrate(filled, trace.width, dt, steps)
        per_bin = dt / trace.width
        service = []
        for w, c, f in zip(wsum, sums, flat, strict=True):
            mean_ms = w / c if c > 0 else f / per_bin
            service.append(mean_ms / 1000.0)
    return Steps(dt, rates, service)


def scaled(steps: Steps, factor: float) -> Steps:
    return Steps(steps.dt, [r * factor for r in steps.rates], steps.service_s)
