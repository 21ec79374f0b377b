"""Job traces: read a CSV (or CSV.gz) of jobs and turn it into the jobs a worker model replays.

Two shapes, told apart by their columns (request traces have ``requests``):

- one row per job: ``time`` (ISO-8601 or epoch seconds, when the job became due) and
  ``duration_s`` (how long it ran), optionally ``queue`` (its queue's name; other columns are
  ignored). Rows need not be sorted.
- binned counts: ``time,jobs`` with bins of equal width; each bin's jobs arrive at seeded random
  moments inside it and their durations are drawn (seeded) from a gamma distribution with the
  mean and coefficient of variation the caller gives (``--job-duration``, ``--job-duration-cv``).

``prepare_jobs`` multiplies every duration by ``duration_scale`` and scales the arrival rate by a
factor (``--peak-instances``): jobs are thinned (factor below 1) or copied (above 1, a copy
arriving with its original), seeded.
"""

from __future__ import annotations

import gzip
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoscaler.sim.traces import Rows, TraceError, _open_text

#: the offered load a peak is measured over when scaling to ``--peak-instances`` (s): job
#: durations run to minutes and hours, so a one-minute peak would be mostly noise
PEAK_WINDOW_S = 900.0


@dataclass
class JobTrace:
    """Jobs in arrival order: seconds after ``start`` (epoch s), durations (s), queue index."""

    path: str
    start: float
    arrivals: list[float]
    durations: list[float]
    queue_ids: list[int]
    queues: list[str]
    binned: bool = False

    def __len__(self) -> int:
        return len(self.arrivals)

    @property
    def span_s(self) -> float:
        """Until every job could have finished had it started when due, plus a minute."""
        ends = map(float.__add__, self.arrivals, self.durations)
        return max(ends, default=0.0) + 60.0

    def median_duration(self) -> float:
        if not self.durations:
            return 0.0
        ordered = sorted(self.durations)
        return ordered[(len(ordered) - 1) // 2]


def is_job_header(path: str | Path) -> bool:
    """Whether the file's header is a job trace's (``duration_s`` or ``jobs`` column)."""
    try:
        with Path(path).open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as f:  # only the first line: request traces can be large
            first = f.readline(65536).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError):
        return False  # the request reader says what is wrong
    header = {h.strip().lower() for h in first.split(",")}
    return "requests" not in header and ("duration_s" in header or "jobs" in header)


def read_job_trace(
    path: str | Path, *, duration_s: float = 10.0, duration_cv: float = 1.0, seed: int = 1
) -> JobTrace:
    """Read and validate a job trace (either shape); durations of a binned one are drawn."""
    name = str(path)
    try:
        text = _open_text(Path(path))
    except FileNotFoundError:
        raise TraceError(name, 0, "no such file") from None
    except (OSError, EOFError) as exc:
        raise TraceError(name, 0, f"cannot be read ({exc})") from None
    except UnicodeDecodeError:
        raise TraceError(name, 0, "is not UTF-8 text") from None
    lines = text.splitlines()
    header = [h.strip().lower() for h in (lines[0] if lines else "").split(",")]
    if "time" not in header:
        raise TraceError(name, 1, f"no 'time' column (the header is {lines[0] if lines else ''!r})")
    if "duration_s" in header:
        return _per_job(name, header, lines)
    if "jobs" in header:
        if not duration_s > 0 or not duration_cv >= 0:
            raise ValueError("job duration must be above 0 and its spread 0 or more")
        return _binned(name, header, lines, mean=duration_s, cv=duration_cv, seed=seed)
    raise TraceError(name, 1, "no 'duration_s' (one row per job) or 'jobs' (binned) column")


def _per_job(name: str, header: list[str], lines: list[str]) -> JobTrace:
    i_queue = header.index("queue") if "queue" in header else -1
    rows = Rows(name, header, lines)
    jobs: list[tuple[float, float, str]] = []
    for lineno, t, cells in rows:
        d = rows.number(lineno, cells, "duration_s")
        if not 0 <= d < math.inf:
            cell = cells[header.index("duration_s")]
            raise TraceError(name, lineno, f"duration_s {cell!r} must be 0 or more")
        queue = cells[i_queue].strip() if i_queue >= 0 else "default"
        jobs.append((t, d, queue or "default"))
    if not jobs:
        raise TraceError(name, 0, "has no jobs")
    jobs.sort(key=lambda r: r[0])
    start = jobs[0][0]
    queues: dict[str, int] = {}
    ids = [queues.setdefault(q, len(queues)) for _, _, q in jobs]
    return JobTrace(
        name, start, [t - start for t, _, _ in jobs], [d for _, d, _ in jobs], ids, list(queues)
    )


def _binned(
    name: str, header: list[str], lines: list[str], *, mean: float, cv: float, seed: int
) -> JobTrace:
    rows = Rows(name, header, lines)
    bins: list[tuple[float, int]] = []
    for lineno, t, cells in rows:
        count = rows.number(lineno, cells, "jobs")
        if not 0 <= count < math.inf or count != int(count):
            cell = cells[header.index("jobs")]
            raise TraceError(name, lineno, f"jobs {cell!r} must be a whole number >= 0")
        rows.bin(lineno, t)
        bins.append((t, int(count)))
    if len(bins) < 2:
        raise TraceError(name, 0, "needs at least two rows to know the bin width")
    rng = random.Random(seed)
    start, width = rows.start, rows.width
    arrivals: list[float] = []
    for t, count in bins:
        arrivals.extend(sorted(t - start + rng.random() * width for _ in range(count)))
    draw = durations(mean, cv, rng)
    return JobTrace(
        name, start, arrivals, [draw() for _ in arrivals], [0] * len(arrivals), ["default"], True
    )


def durations(mean: float, cv: float, rng: random.Random) -> Callable[[], float]:
    """A seeded draw of gamma-distributed durations (``cv`` 0: always ``mean``)."""
    if cv <= 0:
        return lambda: mean
    shape = 1.0 / (cv * cv)
    scale = mean * cv * cv
    return lambda: rng.gammavariate(shape, scale)


def peak_load(trace: JobTrace, window_s: float = PEAK_WINDOW_S) -> float:
    """The highest offered load (job-seconds arriving per second) over ``window_s``."""
    if not trace.arrivals:
        return 0.0
    buckets: dict[int, float] = {}
    for t, d in zip(trace.arrivals, trace.durations, strict=True):
        k = int(t // window_s)
        buckets[k] = buckets.get(k, 0.0) + d
    return max(buckets.values()) / window_s


def prepare_jobs(
    trace: JobTrace,
    *,
    duration_scale: float = 1.0,
    concurrency: int = 1,
    peak_instances: float | None = None,
    seed: int = 1,
) -> tuple[JobTrace, float]:
    """The trace with durations multiplied by ``duration_scale`` and, when ``peak_instances`` is
    given, its arrivals scaled so that the busiest ``PEAK_WINDOW_S`` offers the work of that many
    instances of ``concurrency`` slots; returns it and the factor."""
    durs = [d * duration_scale for d in trace.durations]
    scaled_trace = JobTrace(
        trace.path, trace.start, trace.arrivals, durs, trace.queue_ids, trace.queues, trace.binned
    )
    if peak_instances is None:
        return scaled_trace, 1.0
    peak = peak_load(scaled_trace)
    if peak <= 0:
        raise ValueError("the trace has no work, so it cannot be scaled to a peak")
    factor = peak_instances * concurrency / peak
    return resample(scaled_trace, factor, seed), factor


def resample(trace: JobTrace, factor: float, seed: int) -> JobTrace:
    """Each job kept ``floor(factor)`` times plus once more with the probability of the
    fraction (seeded): thinning below 1, copies (arriving with the original) above."""
    rng = random.Random(seed)
    whole = math.floor(factor)
    frac = factor - whole
    arrivals: list[float] = []
    durs: list[float] = []
    ids: list[int] = []
    for t, d, q in zip(trace.arrivals, trace.durations, trace.queue_ids, strict=True):
        n = whole + (1 if rng.random() < frac else 0)
        arrivals.extend([t] * n)
        durs.extend([d] * n)
        ids.extend([q] * n)
    return JobTrace(trace.path, trace.start, arrivals, durs, ids, trace.queues, trace.binned)
