"""Plain values that flow through one tick: readings, observations, decisions.

Everything here is data; nothing here does I/O. Classes use ``__slots__`` because the simulator
builds millions of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Metric(StrEnum):
    """What a signal measures."""

    REQUEST_QUEUE_TIME = "request_queue_time"
    JOB_LATENCY = "job_latency"


class Status(StrEnum):
    """How far a signal can be trusted.

    ``OK``: fresh and complete. ``SPARSE``: fresh but drawn from fewer samples than the process's
    ``MIN_SAMPLES``; the policy lets it scale down and scale up by one instance at a time only.
    ``MISSING``: no data at all (reporters silent). ``STALE``: the newest data is too old.
    ``FAILED``: the source raised. The last three never allow a downscale.
    """

    OK = "ok"
    SPARSE = "sparse"
    MISSING = "missing"
    STALE = "stale"
    FAILED = "failed"


class Action(StrEnum):
    UP = "up"
    DOWN = "down"
    HOLD = "hold"


class Reason(StrEnum):
    """Machine-readable reason for every decision (logged as ``reason=``)."""

    ABOVE_BAND = "above_band"  # scaled up: signal above the up threshold, sized by UP_STEP
    # or the overload (no rate or nothing learned)
    UP_TO_LOAD = "up_to_load"  # scaled up: above the up threshold, sized by the arrival rate
    # and the backlog at what one instance carries
    FORECAST = "forecast"  # scaled up: the recent arrival rate's mean and spread need more
    EARLY = "early"  # scaled up: the requests in service near what the instances serve at once
    SCALE_FROM_ZERO = "scale_from_zero"  # worker at 0 with due or running jobs: to 1 at once
    RECURRING = "recurring"  # up or hold: a worker ahead of a burst of jobs that recurs at a
    # learned interval, to what the last one needed
    UP_TO_JOBS = "up_to_jobs"  # scaled up: a worker to what runs every due and running job at
    # once (at least one more)
    BELOW_BAND = "below_band"  # scaled down by DOWN_STEP: below the band for DOWN_DELAY
    DOWN_TO_LOAD = "down_to_load"  # scaled down to what the load needs (highest of DOWN_DELAY)
    DOWN_TO_JOBS = "down_to_jobs"  # scaled down: a worker with no job running, to the most its
    # due and running jobs needed over DOWN_DELAY
    IDLE_INSTANCES = "idle_instances"  # scaled down: a worker with no job running, to the most
    # its jobs needed over UP_COOLDOWN (the boot), where that is within UP_THRESHOLD and shorter
    # than DOWN_DELAY
    IDLE = "idle"  # scaled down: a worker to MIN (0), nothing due or running for UP_COOLDOWN
    BURST_OVER = "burst_over"  # scaled down: a worker to MIN (at least 1) once a burst on its
    # learned schedule is over, without the idle wait: the next is started ahead
    JOBS_ENDED = "jobs_ended"  # hold (or down to 1): a worker at MIN 0 with none due or running
    # when read, but jobs ended between readings within UP_COOLDOWN, and a cold start (the
    # boot) would let the next job wait longer than UP_THRESHOLD
    PROBE = "probe"  # scaled down: quiet so long that fewer must carry more than the forecast says
    DOWN_IN_BAND = "down_in_band"  # scaled down inside the band's lower half, the app's record
    # above the band clean (under half the budget): to what the load needs (highest of DOWN_DELAY)
    IN_BAND = "in_band"  # hold: inside the band
    UP_SENSITIVITY = "up_sensitivity"  # hold: above the band, not yet for UP_SENSITIVITY
    UP_COOLDOWN = "up_cooldown"  # hold: above the band but an upscale happened < UP_COOLDOWN ago
    DRAINING = "draining"  # hold: a worker above the band whose due jobs fall fast enough to be
    # gone before an added instance would serve
    AT_MAX = "at_max"  # hold: above the band at the upper bound
    DOWN_DELAY = "down_delay"  # hold: below the band, waiting out DOWN_DELAY
    AT_MIN = "at_min"  # hold: below the band at the lower bound
    BUSY = "busy"  # hold: below the band, but a downscale could stop a running job
    NOT_READY = "not_ready"  # hold: capacity added earlier has not become ready in time
    HEADROOM = "headroom"  # hold: below the band, but fewer instances would carry too much
    SIGNAL_MISSING = "signal_missing"  # hold: no data
    SIGNAL_STALE = "signal_stale"  # hold: data too old
    SIGNAL_FAILED = "signal_failed"  # hold: the source raised
    RAISED_TO_MIN = "raised_to_min"  # up: below the bounds in force (schedule or manual change)
    LOWERED_TO_MAX = "lowered_to_max"  # down: above the bounds in force
    DISABLED_MANUAL_ZERO = "disabled_manual_zero"  # hold: a human set 0 on a process with MIN>0


@dataclass(frozen=True, slots=True)
class Reading:
    """What a source returns for one process on one poll.

    ``value_ms`` is the aggregate the process is configured for (``None`` only when there is no
    data at all, e.g. no reporter alive). ``samples`` is how many measurements went into it
    (requests for the web signal, waiting jobs for job latency). ``age_s`` is how old the newest
    data is (``0`` for a direct probe). ``queues`` gives the per-queue value in ms where the
    source has queues. ``depth`` is the number of due waiting jobs, ``busy`` the number of
    running jobs (or in-flight requests), each ``None`` when the backend does not record it.
    ``finished`` is the number of jobs that ended (succeeded or failed) since the source's
    previous reading, ``None`` when the backend cannot tell (and on a source's first reading).
    """

    metric: Metric
    value_ms: float | None
    samples: int = 0
    age_s: float | None = 0.0
    queues: Mapping[str, float] = field(default_factory=dict)
    depth: int | None = None
    busy: int | None = None
    warning: str | None = None
    rate_per_s: float | None = None
    #: mean number of requests being served at once across the formation over the window (busy
    #: seconds per second), where the app reports it; ``None`` when unknown
    in_use: float | None = None
    #: jobs that ended since the previous reading; ``None`` when unknown
    finished: int | None = None


@dataclass(frozen=True, slots=True)
class Formation:
    """One process's formation as the platform reports it."""

    quantity: int
    updated_at: float | None = None  # wall-clock epoch seconds of the last change, if known
    deploying: bool = False
    ready: int | None = None  # instances actually serving, where the platform says


@dataclass(slots=True)
class Observation:
    """The policy's input for one process on one tick."""

    current: int
    signal_ms: float | None
    status: Status = Status.OK
    depth: int | None = None
    busy: int | None = None
    rate_per_s: float | None = None  # arrivals per second over the window, when the source knows
    ready: int | None = None  # instances serving, where the platform says
    in_use: float | None = None  # mean requests being served at once (see ``Reading.in_use``)
    finished: int | None = None  # jobs ended since the previous reading (``Reading.finished``)


@dataclass(slots=True)
class Instant:
    """A point in time as the policy sees it: monotonic seconds (for every duration) and the
    wall clock in epoch seconds (only for schedules)."""

    mono: float
    wall: float


@dataclass(slots=True)
class Decision:
    process: str
    action: Action
    current: int
    desired: int
    reason: Reason
    signal_ms: float | None
    status: Status
    low: int  # bounds in force
    high: int
    adopted: bool = False  # the quantity was changed by someone else and is adopted
    boot_s: float | None = None  # the boot time learned so far (``None``: none read yet)
