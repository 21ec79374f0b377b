"""The arrival rate's recent mean and spread, and the rate to expect from them (pure)."""

from __future__ import annotations

import math
from typing import Protocol

#: the arrival rate's recent mean and spread are exponentially weighted over this long (s)
RATE_TAU = 900.0

#: a reading further than this many spreads from the mean counts as this many (winsorised), so
#: that a burst teaches the record that the rate varies, not that it varies by the burst's height
#: (which would hold capacity for it long after it ended); a lasting change still moves the mean
#: as the spread grows with every clipped reading
CLIP = 3.0
#: the clipping never comes closer to the mean than this fraction of it (a flat rate can move)
CLIP_FLOOR = 0.1
_WEIGHTS: dict[float, float] = {}
#: a record older than this gives the past its whole weight (to within 2e-9); and ``CLIP``
#: squared (constants of the hot path)
_SETTLED = 20.0 * RATE_TAU
_CLIP2 = CLIP * CLIP


#: the share of readings above the band is exponentially weighted over this long (s): the
#: app's recent record against its SLO, a few hours of it
SHARE_TAU = 6 * 3600.0
#: while at least this share of readings was above the band, ``HEADROOM`` is kept in full; with
#: fewer, in proportion (an app that keeps its SLO with less spare pays for less). A new record
#: starts here: the whole headroom until the app shows it needs less. A reading above the band
#: during a burst (the rate beyond ``CLIP`` spreads above its mean: ``track``) counts as one
#: within it: no spare for the usual spread would have carried it, so it does not buy more
SHARE_BUDGET = 0.005
_SHARE_WEIGHTS: dict[float, float] = {}


class Record(Protocol):
    """The rate's record as the policy state keeps it."""

    rate_mean: float | None
    rate_var: float
    rate_at: float | None
    rate_since: float | None


def weight(dt: float, tau: float = RATE_TAU, cache: dict[float, float] = _WEIGHTS) -> float:
    """The weight of a reading ``dt`` seconds after the last in a mean weighted over ``tau``
    (by default the rate's mean and spread), kept in ``cache``."""
    w = cache.get(dt)
    if w is None:
        w = 1.0 - math.exp(-dt / tau)
        if len(cache) < 64:  # ticks are evenly spaced: a handful of gaps in practice
            cache[dt] = w
    return w


def track(rec: Record, rate: float, t: float) -> tuple[float, float, float, bool]:
    """The mean, variance and start of the record after a reading of ``rate`` at ``t``: a
    deviation from the mean beyond ``CLIP`` spreads (the spread corrected as in ``expected``, at
    least ``CLIP_FLOOR`` of the mean) counts as that far. Last, whether the reading was such a
    burst above the mean: more than any spare kept for the rate's usual spread carries."""
    mean, at, since = rec.rate_mean, rec.rate_at, rec.rate_since
    if mean is None or at is None or since is None or t <= at:
        return rate, 0.0, t, False
    dt = t - at
    a = _WEIGHTS.get(dt) or weight(dt)  # the cached weight of an even tick, else computed
    d = rate - mean
    var = rec.rate_var
    age = at - since
    if 0.0 < age < _SETTLED:
        var /= weight(age)
    lim2 = _CLIP2 * var
    floor = CLIP_FLOOR * mean
    floor *= floor
    lim2 = lim2 if lim2 > floor else floor
    burst = False
    if d * d > lim2:
        burst = d > 0.0
        d = math.sqrt(lim2) if burst else -math.sqrt(lim2)
    return mean + a * d, (1.0 - a) * (rec.rate_var + a * d * d), since, burst


def over_share(share: float | None, at: float | None, t: float, over: bool) -> float:
    """The share of readings above the band after one at ``t`` (``over``: this one is), the
    last counted at ``at``: weighted over ``SHARE_TAU``, from ``SHARE_BUDGET`` at the first."""
    if share is None:
        share = SHARE_BUDGET
    if at is None or t <= at:
        return share
    dt = t - at
    a = _SHARE_WEIGHTS.get(dt) or weight(dt, SHARE_TAU, _SHARE_WEIGHTS)
    return share + a * ((1.0 if over else 0.0) - share)


def spare(headroom: float, share: float | None) -> float:
    """The headroom in force: ``headroom`` (``HEADROOM``) while the share of readings above the
    band is ``SHARE_BUDGET`` or more, in proportion below."""
    if share is None or share >= SHARE_BUDGET:
        return headroom
    return headroom * share / SHARE_BUDGET


def expected(rec: Record, rate: float, t: float, headroom: float) -> float:
    """The rate to keep capacity for: the recent mean plus ``headroom`` standard deviations
    (the spread corrected for the weight not yet given to the past), never less than now."""
    mean, since = rec.rate_mean, rec.rate_since
    if headroom <= 0.0 or mean is None or since is None or t <= since:
        return rate
    age = t - since
    var = rec.rate_var
    spread = math.sqrt(var if age > _SETTLED else var / weight(age))
    high = mean + headroom * spread
    return high if high > rate else rate
