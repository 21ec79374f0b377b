"""Reading + formation -> observation: the one rule for how far a signal can be trusted.

Pure and shared: the daemon's loop (``autoscaler.loop``) and the simulator's engine policy
(``autoscaler.sim.baselines.EnginePolicy``) both turn what a source read and what the platform
reports into the policy's input here, so what the simulator replays is what the daemon does.

The rule, first match wins:

- no reading (the source raised, timed out or is not configured): ``FAILED``;
- a value that is not a finite number: ``FAILED``;
- no value, or no age (nothing published in the window, no reporter alive): ``MISSING``;
- the newest data older than ``stale_after`` seconds: ``STALE`` (the value is kept for the log);
- the web signal (request queue time) from at least one but fewer than ``min_samples``
  requests: ``SPARSE``. Zero samples with a value is an idle window whose publishers are alive
  (heartbeats): a valid "no traffic", ``OK`` at 0 ms, so an idle app can scale down;
- otherwise ``OK`` (a negative value is clamped to 0).

Every field of the reading the policy uses is copied (depth, busy, jobs finished, arrival rate,
in-use), and the platform's count of serving instances (``ready``) is passed on; the policy
decides what to trust.
"""

from __future__ import annotations

import math
from typing import Protocol

from autoscaler.model import Formation, Metric, Observation, Reading, Status


class ReadingLike(Protocol):
    """The fields of a ``Reading`` that ``fill`` reads (the simulator refills one such object
    per tick instead of building a new ``Reading``)."""

    @property
    def metric(self) -> Metric: ...
    @property
    def value_ms(self) -> float | None: ...
    @property
    def samples(self) -> int: ...
    @property
    def age_s(self) -> float | None: ...
    @property
    def depth(self) -> int | None: ...
    @property
    def busy(self) -> int | None: ...
    @property
    def rate_per_s(self) -> float | None: ...
    @property
    def in_use(self) -> float | None: ...
    @property
    def finished(self) -> int | None: ...


_RQT = Metric.REQUEST_QUEUE_TIME
_OK, _SPARSE, _MISSING, _STALE, _FAILED = (
    Status.OK,
    Status.SPARSE,
    Status.MISSING,
    Status.STALE,
    Status.FAILED,
)
_isfinite = math.isfinite


def fill(  # noqa: PLR0917 (the simulator calls it once a tick: positional)
    obs: Observation,
    current: int,
    ready: int | None,
    reading: ReadingLike,
    stale_after: float,
    min_samples: int,
) -> Observation:
    """Set every field of ``obs`` from a reading and the formation (its status by the rule in
    the module docstring), and return it.

    ``observe`` builds a new observation with it; the simulator, which decides half a million
    times a month of trace, refills one (``decide`` keeps no reference to it). The rule is
    written inline, one branch per status, rather than in a helper: it runs once a tick."""
    value, age_s = reading.value_ms, reading.age_s
    if value is None:
        status, trusted = _MISSING, False
    elif not _isfinite(value):
        status, trusted, value = _FAILED, False, None
    elif age_s is None:
        status, trusted, value = _MISSING, False, None
    elif age_s > stale_after:
        status, trusted = _STALE, False  # the value is kept for the log
    else:
        value = 0.0 if value < 0.0 else value
        trusted = True
        sparse = reading.metric is _RQT and 0 < reading.samples < min_samples
        status = _SPARSE if sparse else _OK
    obs.current = current
    obs.signal_ms = value
    obs.status = status
    obs.depth = reading.depth
    obs.busy = reading.busy
    # what only a fresh reading tells (the load now) is unknown on a stale or failed one
    obs.rate_per_s = reading.rate_per_s if trusted else None
    obs.ready = ready
    obs.in_use = reading.in_use if trusted else None
    obs.finished = reading.finished
    return obs


def observe(
    reading: Reading | None, formation: Formation, *, stale_after: float, min_samples: int
) -> Observation:
    """The policy's input for one process on one tick. ``reading`` is ``None`` when the source
    failed (the caller logs why)."""
    obs = Observation(formation.quantity, None, _FAILED, ready=formation.ready)
    if reading is None:
        return obs
    return fill(
        obs,
        formation.quantity,
        formation.ready,
        reading,
        stale_after=stale_after,
        min_samples=min_samples,
    )
