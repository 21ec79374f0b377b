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

Every field of the reading the policy uses is copied (depth, busy, arrival rate, in-use), and the
platform's count of serving instances (``ready``) is passed on; the policy decides what to trust.
"""

from __future__ import annotations

import math

from autoscaler.model import Formation, Metric, Observation, Reading, Status


def status_of(reading: Reading | None, *, stale_after: float, min_samples: int) -> Status:
    """How far ``reading`` can be trusted (``None``: the source failed)."""
    if reading is None:
        return Status.FAILED
    value = reading.value_ms
    if value is not None and not math.isfinite(value):
        return Status.FAILED
    if value is None or reading.age_s is None:
        return Status.MISSING
    if reading.age_s > stale_after:
        return Status.STALE
    if reading.metric is Metric.REQUEST_QUEUE_TIME and 0 < reading.samples < min_samples:
        return Status.SPARSE
    return Status.OK


def observe(
    reading: Reading | None, formation: Formation, *, stale_after: float, min_samples: int
) -> Observation:
    """The policy's input for one process on one tick. ``reading`` is ``None`` when the source
    failed (the caller logs why)."""
    status = status_of(reading, stale_after=stale_after, min_samples=min_samples)
    if reading is None:
        return Observation(formation.quantity, None, status, ready=formation.ready)
    value = reading.value_ms
    if status is Status.FAILED or status is Status.MISSING:
        value = None
    elif value is not None and status is not Status.STALE:
        value = max(0.0, value)
    return Observation(
        formation.quantity,
        value,
        status,
        reading.depth,
        reading.busy,
        reading.rate_per_s,
        formation.ready,
        reading.in_use,
    )
