"""The capacity model: what one instance carries, read off the signal against its load.

Readings of the signal are kept per bin of load per instance (5% wide), each bin the mean of
its recent readings (the app may get faster or slower: a bin follows its last
``BIN_MEMORY`` readings). Walking up the bins read often enough, the estimate is the last load
before the mean signal goes above the up threshold: *sure* once a load with its mean signal in
the upper half of the band has been read (or an overloaded bin lies just above it), else only a
floor (the instances carried that much in the band; they may carry far more). The same walk
over the requests in service per instance (``Observation.in_use``) gives the early signal's
limit. Pure functions; the ladder (``autoscaler.policy.ladder``) calls them.
"""

from __future__ import annotations

import math

from autoscaler.policy.state import Bins

#: a load counts as near the top of the band once its mean signal is this far up the band
LEARN_FROM = 0.5
#: readings of the signal count only with a p95 over at least this many requests (15 of them
#: above it): fewer can land anywhere in their tail
LEARN_SAMPLES = 300
#: a bin counts as in the band once it holds this many readings, as above it with this many;
#: its mean weighs the last ``BIN_MEMORY`` readings most
BIN_READINGS = 20
STOP_READINGS = 2
BIN_MEMORY = 20
#: an overloaded bin at most this many bins (5% each) above the last one in the band makes the
#: estimate sure: what one instance carries lies between the two
BRACKET_BINS = 3
#: an overload reading counts only if the rate has not risen since the last tick by more than
#: this many standard deviations of the count noise of two windows a tick apart
RISE_SIGMAS = 2.0
#: at most this many bins are kept (the lowest loads are dropped first): the state stays small
MAX_BINS = 160
_PER_LOG = 1.0 / math.log(1.05)  # bins of load 5% wide
_log, _floor = math.log, math.floor
#: from this many readings on, a bin's ``kind`` depends on its mean signal alone
_READ = max(BIN_READINGS, STOP_READINGS)


def bin_of(load: float) -> int:
    """The bin of a load per instance (> 0)."""
    return math.floor(math.log(load) * _PER_LOG)


def load_of(k: int) -> float:
    """The middle of bin ``k``."""
    return math.exp((k + 0.5) / _PER_LOG)


def learn(bins: Bins, load: float, signal_ms: float) -> tuple[Bins, int]:
    """``bins`` with one more reading of the signal at ``load`` per instance (a new dict: the
    mean of the first readings, then exponentially weighted), and the bin it went to."""
    k = bin_of(load)
    old = bins.get(k)
    if old is None:
        new = (signal_ms, 1)
    else:
        mean, n = old
        new = (mean + (signal_ms - mean) / (n + 1 if n < BIN_MEMORY else BIN_MEMORY), n + 1)
    out = dict(bins)
    out[k] = new
    if old is None and len(out) > MAX_BINS:
        del out[min(out)]
    return out, k


def update(
    bins: Bins, load: float, signal_ms: float, top_ms: float, up_ms: float
) -> tuple[Bins, bool]:
    """``learn`` for the policy's hot path: the new bins, and whether the bin read changed its
    ``kind`` (only then can ``estimate`` change)."""
    k = _floor(_log(load) * _PER_LOG)
    old = bins.get(k)
    out = bins.copy()
    if old is None:
        out[k] = (signal_ms, 1)
        if len(out) > MAX_BINS:
            del out[min(out)]
            if k not in out:
                return out, False
        return out, signal_ms > up_ms and STOP_READINGS <= 1
    mean, n = old
    new = out[k] = (mean + (signal_ms - mean) / (n + 1 if n < BIN_MEMORY else BIN_MEMORY), n + 1)
    if n >= _READ:  # read often enough before and after: its kind is where its mean lies
        now = new[0]
        return out, (mean > up_ms) is not (now > up_ms) or (mean >= top_ms) is not (now >= top_ms)
    return out, kind(old, top_ms, up_ms) != kind(new, top_ms, up_ms)


def kind(entry: tuple[float, int] | None, top_ms: float, up_ms: float) -> int:
    """0: not enough readings; 1: in the band; 2: near the top of it; 3: above it."""
    if entry is None:
        return 0
    signal_ms, n = entry
    if signal_ms > up_ms:
        return 3 if n >= STOP_READINGS else 0
    if n < BIN_READINGS:
        return 0
    return 2 if signal_ms >= top_ms else 1


def estimate(bins: Bins, top_ms: float, up_ms: float) -> tuple[float | None, bool]:
    """What one instance carries with the signal within ``up_ms``, and whether it is sure.

    Walking up the bins read often enough: the last one before the mean signal goes above
    ``up_ms`` (its middle). Sure when a load with its mean signal at ``top_ms`` or more was
    read on the way, or when the walk stopped at an overloaded bin at most ``BRACKET_BINS``
    above it; otherwise a floor. ``(None, False)`` when no bin has been read often enough.
    """
    best = None
    sure = False
    for k in sorted(bins):
        what = kind(bins[k], top_ms, up_ms)
        if what == 3:
            if best is not None and k - best <= BRACKET_BINS:
                sure = True
            break
        if what:
            best = k
            sure = sure or what == 2
    if best is None:
        return None, False
    return load_of(best), sure


def settled(last_change: float | None, t: float, up_cooldown: float, window: float) -> bool:
    """Whether the signal's whole window lies after the last change's instances booted (taken
    as ``UP_COOLDOWN``): only then does a reading say what this many instances carry."""
    return last_change is None or t - last_change >= up_cooldown + window


def own_overload(
    above_since: float | None, last_change: float | None, up_cooldown: float, window: float
) -> bool:
    """Whether a reading may count: not above the band, or above it since after the formation
    settled. An overload that began before the last change is a backlog still draining, not
    what this many instances carry."""
    return above_since is None or settled(last_change, above_since, up_cooldown, window)


def readable(last_change: float | None, above_since: float | None, t: float, settle: float) -> bool:
    """``settled`` and ``own_overload`` at once (``settle``: ``UP_COOLDOWN`` plus ``WINDOW``),
    for the policy's hot path."""
    if last_change is None:
        return True
    return t - last_change >= settle and (
        above_since is None or above_since - last_change >= settle
    )


def top_of_band(down_ms: float, up_ms: float) -> float:
    """Where the upper half of the band begins (ms)."""
    return down_ms + LEARN_FROM * (up_ms - down_ms)


def rising(rate: float, last: float | None, dt: float, window: float) -> bool:
    """Whether the load is rising under this reading: the rate over ``window`` (s) went up since
    the one read ``dt`` s earlier by more than ``RISE_SIGMAS`` standard deviations of what
    Poisson arrivals alone would move it (the two windows share all but ``dt`` of their
    seconds). A window read while the load rises reports its mean rate, below the load its
    last seconds queued under: an overload read then is not what the instances carry at the
    window's mean."""
    if last is None or dt <= 0.0 or rate <= last:
        return False
    noise = math.sqrt((rate + last) * min(dt, window)) / window
    return rate - last > RISE_SIGMAS * noise
