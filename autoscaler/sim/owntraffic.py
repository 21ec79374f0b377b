"""Replaying the app's own traffic: the history's arrival rate as a trace, and the app model
fitted from the history.

``export`` turns the minutes of one process into a trace CSV (``time,requests``: arrivals per
minute, the recorded mean rate times 60) that ``simulate`` and ``tune`` read, and fits what the
simulator needs to know of the app, each from what the history shows and said how:

- service time, by Little's law: requests in service = arrival rate x service time, over the
  minutes whose queue time was below the band (where nearly every request in the app is being
  served, not waiting); the median of in-service / rate;
- slots per instance: the fewest whole slots that could have served the most requests in service
  per serving instance seen at any tick: in service never exceeds the slots, and comes near
  them when the queue time rises (a lower bound otherwise);
- boot time: the median delay from a scale-up to the end of the minute its instances all
  served, less half a minute (a minute's serving count is read at its end), where the platform
  reports serving instances.

What cannot be fitted keeps the simulator's default, and the printout says so.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autoscaler.history import Event, HistoryStore, Minute


@dataclass
class Fit:
    """The app model fitted from the history; ``None`` where it could not be fitted."""

    service_ms: float | None = None
    concurrency: int | None = None
    boot_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self, defaults: tuple[float, int, float] = (100.0, 4, 45.0)) -> str:
        service, slots, boot = defaults
        lines = [
            "app model fitted from the history:",
            _line("--service-ms", self.service_ms, service, "{:.0f}"),
            _line("--concurrency", self.concurrency, slots, "{}"),
            _line("--boot", self.boot_s, boot, "{:.0f}"),
        ]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def _line(flag: str, value: float | None, default: float, fmt: str) -> str:
    if value is None:
        return f"  {flag} {fmt.format(default)} (not fitted: the simulator's default)"
    return f"  {flag} {fmt.format(value)} (fitted)"


def fit(rows: Sequence[Minute], events: Sequence[Event], band: tuple[float, float]) -> Fit:
    """Fit service time, slots and boot time from minutes and decisions; ``band`` is the
    process's (down, up) thresholds in ms."""
    down, up = band
    out = Fit()
    calm = [
        m.in_use / m.rate
        for m in rows
        if m.in_use is not None and m.rate and m.rate > 0 and m.p95 is not None and m.p95 <= down
    ]
    if len(calm) >= 10:
        out.service_ms = statistics.median(calm) * 1000.0
    else:
        out.notes.append("too few calm minutes with requests in service and a rate to fit")
    ordered = sorted(rows, key=lambda m: m.t)
    # requests in service per serving instance can never exceed the slots, and come near them
    # when the queue time rises: the fewest whole slots that could have served the most seen
    peaks = [m.peak for m in ordered if m.peak is not None]
    saturated = any(m.p95 is not None and m.p95 > up for m in ordered)
    if peaks:
        out.concurrency = max(1, math.ceil(max(peaks) - 0.05))
        if not saturated:
            out.notes.append(
                "slots per instance: the queue time never rose above the band, so the most "
                "requests in service per instance seen is only a lower bound"
            )
    else:
        out.notes.append("slots per instance: no minute with requests in service")
    delays = []
    by_t = sorted(rows, key=lambda m: m.t)
    for e in events:
        if e.kind != "decision" or e.desired is None or e.current is None:
            continue
        if e.desired <= e.current:
            continue
        for m in by_t:
            if m.t + 60 <= e.t:  # the decision's own minute counts: ready is read at its end
                continue
            if m.ready is None or (m.quantity is not None and m.quantity < e.desired):
                break  # not reported, or scaled back down before all served
            if m.ready >= e.desired:
                delays.append(m.t + 60 - e.t)
                break
    if delays:
        # a minute's serving count is read at its end: the delay to it overstates the boot by
        # half a minute on average
        out.boot_s = max(0.0, statistics.median(delays) - 30.0)
    else:
        out.notes.append("boot time: the platform reported no serving instances after scale-ups")
    return out


def trace_csv(rows: Sequence[Minute]) -> tuple[str, int]:
    """The minutes' arrivals as a trace (one row a minute, epoch seconds); minutes with no
    recorded rate take the previous one's (their count is returned: they are guesses)."""
    known = [m for m in sorted(rows, key=lambda m: m.t) if m.rate is not None]
    if not known:
        raise ValueError("the history has no arrival rate for this process (no minute has one)")
    lines = ["time,requests"]
    filled = 0
    rate = known[0].rate or 0.0
    by_t = {m.t: m.rate for m in known}
    for t in range(known[0].t, known[-1].t + 60, 60):
        value = by_t.get(t)
        if value is None:
            filled += 1
        else:
            rate = value
        lines.append(f"{t},{rate * 60:.3f}")
    return "\n".join(lines) + "\n", filled


def export(
    store: HistoryStore, process: str, since_s: float, now: float, band: tuple[float, float]
) -> tuple[str, Fit, list[Minute]]:
    """The trace of ``process`` over the last ``since_s`` seconds before ``now``, and the fit."""
    rows, events = store.read(process, now - since_s, now + 60)
    text, filled = trace_csv(rows)
    result = fit(rows, events, band)
    if filled:
        result.notes.append(f"{filled} minutes had no recorded rate: the previous one was used")
    return text, result, rows


def instance_hours(rows: Sequence[Minute]) -> float:
    """What the formation cost over these minutes, as recorded (instance-hours)."""
    return sum((m.quantity or 0) for m in rows) / 60.0


def export_from_env(
    env: Mapping[str, str], process: str, since_s: float
) -> tuple[str, Fit, list[Minute]]:
    """``export`` from the store the config vars name, at the daemon's own clock, with the band
    the daemon recorded. Raises ``ValueError`` for what the user must fix."""
    from autoscaler.registry import open_history_store

    store = open_history_store(env)
    if store is None or type(store).__name__ == "MemoryStore":
        raise ValueError("no shared history store: set REDIS_URL or DATABASE_URL as the daemon has")
    try:
        if process not in store.processes():
            have = ", ".join(store.processes()) or "none"
            raise ValueError(f"--process: no history for {process!r} (history for: {have})")
        clock = store.get_meta("clock")
        now = float(clock) if clock else time.time()
        meta = json.loads(store.get_meta("settings") or "{}")
        band_ms = (meta.get("processes", {}).get(process) or {}).get("band") or {}
        band = (float(band_ms.get("down_ms", 50.0)), float(band_ms.get("up_ms", 200.0)))
        return export(store, process, since_s, now, band)
    finally:
        store.close()
