"""What the policy has learned, as a small versioned JSON value that survives restarts.

``snapshot`` takes the learned part of a ``PolicyState`` (what one instance carries and its
readings, the most load per instance carried quietly, the early signal's limit and its
readings, the arrival rate's mean and spread, the share of readings above the band, the boot
time's readings, a job process's recent bursts); ``restore`` puts it into a fresh state, or
ignores it (returns the state unchanged) when it is not a valid snapshot of this ``VERSION``
(or of an earlier one: version 1, written before boot times were learned, version 2, before
bursts were, version 3, before the load carried quietly was kept, and version 4, before the
share of readings above the band was: restored without them). The clocks (cooldowns, delays,
an upscale being timed, when jobs last ended between readings) are never restored: a new daemon
counts the platform's last change instead (``initial_state``). Pure: the daemon's store
(``autoscaler.ports.StateStore``) keeps the value.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from autoscaler.policy import boot, jobs, load
from autoscaler.policy.capacity import MAX_BINS
from autoscaler.policy.load import RATE_TAU
from autoscaler.policy.state import Bins, Bursts, PolicyState

if TYPE_CHECKING:
    from autoscaler.policy.config import PolicyConfig

VERSION = 5
#: earlier versions still read (what they lack is left unlearned)
READ_VERSIONS = (1, 2, 3, 4, VERSION)
#: a bin's reading count is kept up to this (its mean weighs only the last few anyway)
MAX_COUNT = 1_000_000


def snapshot(state: PolicyState, mono: float) -> dict[str, Any]:
    """The learned part of ``state`` at monotonic time ``mono``: JSON-serialisable, at most
    ``MAX_BINS`` readings per model."""
    age = None if state.rate_since is None else max(0.0, mono - state.rate_since)
    return {
        "version": VERSION,
        "capacity": state.capacity,
        "sure": state.sure,
        "quiet": state.quiet,
        "bins": _bins_out(state.bins),
        "slots": state.slots,
        "slot_bins": _bins_out(state.slot_bins),
        "rate_mean": state.rate_mean,
        "rate_var": state.rate_var,
        "rate_age": age,
        "over_share": state.over_share,
        "boots": list(state.boots),
        # a burst's time as its age (monotonic clocks differ between processes)
        "bursts": [
            [max(0.0, mono - at), size, work] for at, size, work, _ in state.bursts[-jobs.KEPT :]
        ],
    }


def restore(state: PolicyState, data: object, mono: float) -> PolicyState:
    """``state`` with the learned values of ``data`` (a ``snapshot``) put in; ``state`` itself
    when ``data`` is not a valid snapshot of this version."""
    if not isinstance(data, dict):
        return state
    version = data.get("version")
    if type(version) is not int or version not in READ_VERSIONS:
        return state
    try:
        capacity = _positive_or_none(data["capacity"])
        slots = _positive_or_none(data["slots"])
        bins = _bins_in(data["bins"])
        slot_bins = _bins_in(data["slot_bins"])
        mean = _positive_or_none(data["rate_mean"], zero=True)
        var = _positive_or_none(data["rate_var"], zero=True)
        age = _positive_or_none(data["rate_age"], zero=True)
        boots = _boots_in(data["boots"]) if version >= 2 else ()
        bursts = _bursts_in(data["bursts"], mono) if version >= 3 else ()
        quiet = _positive_or_none(data["quiet"]) if version >= 4 else None
        share = _positive_or_none(data["over_share"], zero=True) if version >= 5 else None
        if share is not None and share > 1.0:
            return state
        sure = data["sure"]
        if not isinstance(sure, bool) or (sure and capacity is None):
            return state
    except (KeyError, TypeError, ValueError):
        return state
    new = PolicyState(
        state.known,
        state.above_since,
        state.below_since,
        state.last_up,
        state.last_change,
        last_down=state.last_down,
        short_since=state.short_since,
        capacity=capacity,
        sure=sure,
        bins=bins,
        slots=slots,
        slot_bins=slot_bins,
        probe_at=state.probe_at,
        quiet=quiet,
        too_few=state.too_few,
        window=state.window,
        boot=boot.estimate(boots),
        boots=boots,
        bursts=bursts,
    )
    if mean is not None and age is not None:
        new.rate_mean, new.rate_var = mean, var or 0.0
        new.rate_at, new.rate_since = mono, mono - min(age, 20.0 * RATE_TAU)
    new.over_share = share
    return new


def _bins_out(bins: Bins) -> list[list[float]]:
    return [[k, mean, n] for k, (mean, n) in sorted(bins.items())[-MAX_BINS:]]


def _bins_in(raw: object) -> Bins:
    if not isinstance(raw, list) or len(raw) > MAX_BINS:
        raise ValueError("not a list of bins")
    out: Bins = {}
    for entry in raw:
        if not isinstance(entry, list) or len(entry) != 3:
            raise ValueError("not a bin")
        k, mean, n = entry
        if type(k) is not int or type(n) is not int or not 0 < n <= MAX_COUNT or abs(k) > 10_000:
            raise ValueError("not a bin")
        mean_ms = _positive_or_none(mean, zero=True)
        if mean_ms is None:
            raise ValueError("not a bin")
        out[k] = (mean_ms, n)
    return out


def _boots_in(raw: object) -> tuple[float, ...]:
    if not isinstance(raw, list) or len(raw) > boot.BOOT_READINGS:
        raise ValueError("not a list of boot times")
    out = []
    for value in raw:
        x = _positive_or_none(value)
        if x is None or x > boot.BOOT_MAX:
            raise ValueError("not a boot time")
        out.append(x)
    return tuple(out)


def _bursts_in(raw: object, mono: float) -> Bursts:
    """Bursts from their ages, oldest first; none is still draining (that is not followed
    across a restart)."""
    if not isinstance(raw, list) or len(raw) > jobs.KEPT:
        raise ValueError("not a list of bursts")
    out = []
    for entry in raw:
        if not isinstance(entry, list) or len(entry) != 3 or type(entry[1]) is not int:
            raise ValueError("not a burst")
        age, work = _positive_or_none(entry[0], zero=True), _positive_or_none(entry[2], zero=True)
        if age is None or work is None or entry[1] < 1:
            raise ValueError("not a burst")
        out.append((mono - age, entry[1], work, False))
    if any(b[0] > a[0] for a, b in zip(out[1:], out, strict=False)):
        raise ValueError("bursts out of order")
    return tuple(out)


def _positive_or_none(value: object, *, zero: bool = False) -> float | None:
    """A finite number above 0 (or at 0 with ``zero``), ``None`` kept; anything else raises."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    x = float(value)
    if not math.isfinite(x) or x < 0 or (x == 0 and not zero):
        raise ValueError("out of range")
    return x


def learned(state: PolicyState, cfg: PolicyConfig | None = None) -> dict[str, float | bool]:
    """What the policy has learned of the app so far, rounded, for the decision log and the
    dashboard: ``capacity``, the requests/s one instance carries, with ``capacity_sure`` false
    while it is only a floor; ``carried_quietly``, the most requests/s one instance carried
    with the signal below the band, a floor too, while nothing sure is learned; ``slots``, the
    requests (web) or jobs (workers) one instance serves at once; ``boot_s``, how long the
    policy's upscales took to serve; ``bursts_every_s``, the interval of a worker's recurring
    bursts (``jobs.recurring``); for a web process of ``cfg``, ``above_band_pct``, the share of
    readings above the band over the last hours (``load.SHARE_TAU``), and ``headroom``, the
    part of ``HEADROOM`` it keeps in force (``load.spare``). A key is absent until its value is
    learned."""
    out: dict[str, float | bool] = {}
    if state.capacity is not None:
        out["capacity"] = round(state.capacity, 1)
        out["capacity_sure"] = state.sure
    if state.quiet is not None and not state.sure:
        out["carried_quietly"] = round(state.quiet, 1)
    if state.slots is not None:
        out["slots"] = round(state.slots, 1)
    if state.boot is not None:
        out["boot_s"] = round(state.boot, 1)
    schedule = jobs.recurring(state) if state.bursts else None
    if schedule is not None:
        out["bursts_every_s"] = round(schedule[1])
    share = state.over_share
    if share is not None and cfg is not None and not cfg.scale_from_zero:
        out["above_band_pct"] = round(100.0 * share, 2)
        out["headroom"] = round(load.spare(cfg.headroom, share), 2)
    return out
