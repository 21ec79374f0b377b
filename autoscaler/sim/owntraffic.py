"""Replaying the app's own traffic: the history's arrival rate as a trace, and the app model
fitted from the history.

``export`` turns the minutes of one process into a trace CSV (``time,requests``: arrivals per
minute, the recorded mean rate times 60) that ``simulate`` and ``tune`` read, and fits what the
simulator needs to know of the app, each from what the history shows and said how:

- service time, by Little's law: requests in service = arrival rate x service time, over the
  minutes whose queue time was below the band (where nearly every request in the app is being
  served, not waiting); the median of in-service / rate;
- slots per instance: the slots under which the simulator's own queueing model (requests routed
  at random to instances of ``c`` slots each, the stationary p95 wait of an M/G/c queue with
  exponential service, as ``autoscaler.sim.fast`` replays) best reproduces the queue time each
  minute recorded at its rate and serving instances, over the minutes whose formation had stood
  a minute; never fewer than the most requests in service per instance seen (``peak``). Queue
  time starts to rise at a load per slot that depends on the slots (one in three requests waits
  at 1.7 of 4 slots busy, at 1.2 of 3), so the minutes tell the slots apart where the queue
  time rose; where it never did, the figure is a lower bound and said so;
- boot time: the median delay from a scale-up to the end of the minute its instances all
  served, less half a minute (a minute's serving count is read at its end), where the platform
  reports serving instances.

What cannot be fitted keeps the simulator's default, and the printout says so.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from autoscaler.history import Event, HistoryStore, Minute
from autoscaler.sim.fast import RHO_CAP, erlang_c

if TYPE_CHECKING:
    from autoscaler.config import Settings

#: the fewest minutes with a standing formation, a rate and a queue time the slots fit needs
MIN_STEADY = 30
#: at most this many of them are used (evenly spaced), to bound the fit's time
MAX_STEADY = 4000
#: a load the stationary model cannot serve is read as this many service times of wait
_OVERLOAD_WAITS = 50.0


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


def fit(
    rows: Sequence[Minute],
    events: Sequence[Event],
    band: tuple[float, float],
    aggregate: str = "p95",
) -> Fit:
    """Fit service time, slots and boot time from minutes and decisions; ``band`` is the
    process's (down, up) thresholds in ms, ``aggregate`` the signal the minutes recorded."""
    down, _ = band
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
    out.concurrency, note = fit_slots(ordered, out.service_ms, aggregate)
    if note:
        out.notes.append(note)
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


def steady_minutes(ordered: Sequence[Minute]) -> list[Minute]:
    """The minutes (in time order) whose formation stood since the minute before with every
    instance serving, with a rate and a trusted queue time: their requests were served by these
    instances."""
    out = []
    for prev, m in itertools.pairwise(ordered):
        if m.t - prev.t != 60 or m.quantity is None or not m.rate or m.p50 is None:
            continue
        if m.untrusted or prev.quantity != m.quantity:
            continue
        if any(x.ready is not None and x.ready != x.quantity for x in (prev, m)):
            continue
        out.append(m)
    return out


def stationary_p95_ms(slots: int, rate: float, instances: int, service_s: float) -> float:
    """The p95 queue time (ms) the simulator's stationary model gives ``instances`` of
    ``slots`` each at ``rate`` requests per second, exponential service of mean ``service_s``
    (``autoscaler.sim.fast``); a load above what it serves reads as a long wait."""
    rho = rate * service_s / (instances * slots)
    if rho >= RHO_CAP:
        return _OVERLOAD_WAITS * service_s * 1000.0
    waits = erlang_c(slots, rho)
    if waits <= 0.05:
        return 0.0
    return service_s * 1000.0 * math.log(20.0 * waits) / (slots * (1.0 - rho))


def fit_slots(
    ordered: Sequence[Minute], service_ms: float | None, aggregate: str = "p95"
) -> tuple[int | None, str | None]:
    """Slots per instance and a note where the figure is not sure (see the module's text)."""
    peaks = [m.peak for m in ordered if m.peak is not None]
    floor = max(1, math.ceil(max(peaks) - 0.05)) if peaks else 1
    steady = steady_minutes(ordered)
    if len(steady) > MAX_STEADY:
        steady = [steady[i * len(steady) // MAX_STEADY] for i in range(MAX_STEADY)]
    rose = sum(1 for m in steady if (m.p50 or 0.0) > 0.0)
    if service_ms is None or aggregate != "p95" or len(steady) < MIN_STEADY or not rose:
        if not peaks:
            return None, "slots per instance: no minute with requests in service"
        why = (
            "the service time is not fitted"
            if service_ms is None
            else f"the signal is {aggregate}, not p95"
            if aggregate != "p95"
            else f"fewer than {MIN_STEADY} minutes with a standing formation"
            if len(steady) < MIN_STEADY
            else "the queue time never rose"
        )
        return floor, (
            f"slots per instance: {why}, so the most requests in service per instance seen "
            "is only a lower bound"
        )
    service_s = service_ms / 1000.0

    def loss(slots: int) -> float:
        total = 0.0
        for m in steady:
            assert m.rate is not None and m.quantity is not None and m.p50 is not None
            serving = m.ready if m.ready else m.quantity
            predicted = stationary_p95_ms(slots, m.rate, serving, service_s)
            total += (math.log1p(m.p50 / service_ms) - math.log1p(predicted / service_ms)) ** 2
        return total

    candidates = range(floor, 4 * floor + 9)
    best = min(candidates, key=loss)  # the fewest on a tie (the first)
    if best == candidates[-1]:
        return best, "slots per instance: the fit reached the largest it tries; check it"
    return best, None


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
    store: HistoryStore,
    process: str,
    since_s: float,
    now: float,
    band: tuple[float, float],
    *,
    aggregate: str = "p95",
) -> tuple[str, Fit, list[Minute]]:
    """The trace of ``process`` over the last ``since_s`` seconds before ``now``, and the fit."""
    rows, events = store.read(process, now - since_s, now + 60)
    text, filled = trace_csv(rows)
    result = fit(rows, events, band, aggregate)
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
    from autoscaler.history import store_kind
    from autoscaler.registry import open_history_store

    if store_kind(env) in ("off", "memory"):
        raise ValueError("no shared history store: set REDIS_URL or DATABASE_URL as the daemon has")
    store = open_history_store(env)
    assert store is not None  # the kind is neither off nor memory
    try:
        if process not in store.processes():
            have = ", ".join(store.processes()) or "none"
            raise ValueError(f"--process: no history for {process!r} (history for: {have})")
        clock = store.get_meta("clock")
        now = float(clock) if clock else time.time()
        meta = json.loads(store.get_meta("settings") or "{}")
        summary = meta.get("processes", {}).get(process) or {}
        band_ms = summary.get("band") or {}
        band = (float(band_ms.get("down_ms", 50.0)), float(band_ms.get("up_ms", 200.0)))
        aggregate = next(
            (str(r[1]) for r in summary.get("rows", []) if str(r[0]).endswith("AGGREGATE")),
            "p95",
        )
        return export(store, process, since_s, now, band, aggregate=aggregate)
    finally:
        store.close()


def record_simulated(
    days: float, env: Mapping[str, str] | None = None
) -> tuple[list[Minute], list[Event], float]:
    """The daemon on the built-in simulated app for ``days``, in-process on a fake clock (a
    tick every ``AUTOSCALER_INTERVAL``), recording into a memory store: the first half of a
    round trip (the minutes and events of ``web``, and the instance-hours the app ran)."""
    from typing import Any

    from autoscaler.clock import FakeClock
    from autoscaler.config import load
    from autoscaler.loop import Autoscaler
    from autoscaler.recording import HistoryHook
    from autoscaler.registry import build_simulated, open_history_store
    from autoscaler.sim.live import LiveApp

    class Quiet:
        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    settings = load({"AUTOSCALER_PROCESSES": "web", **(env or {})})
    clock = FakeClock()
    app = LiveApp(settings, clock)
    store = open_history_store({"AUTOSCALER_HISTORY": "memory"})
    assert store is not None
    hook = HistoryHook(settings, store, Quiet())
    platform, sources = build_simulated(settings, app)
    scaler = Autoscaler(settings, platform, sources, clock, alerts=hook, log=Quiet())
    interval = settings.glob.interval
    paid = 0.0
    for _ in range(round(days * 86400 / interval)):
        scaler.tick()
        paid += app.quantity("web") * interval
        clock.advance(interval)
    hook.recorder.flush()
    rows, events = store.read("web", 0.0, clock.now().wall + 60)
    return rows, events, paid / 3600.0


#: settings ``tune_verdict`` tries (the configured ones among them): a small search, so that the
#: weekly digest costs the daemon seconds of CPU, not minutes
DIGEST_CANDIDATES = 12


def tune_verdict(
    rows: Sequence[Minute],
    events: Sequence[Event],
    settings: Settings,
    process: str,
    *,
    candidates: int = DIGEST_CANDIDATES,
    target: float = 0.995,
    slo_ms: float = 200.0,
) -> str:
    """What ``tune --from-history`` would say of these minutes, in one sentence: the config
    vars it would change, with the cost and the minutes over the SLO of today's settings and of
    the suggested ones, or that it would change nothing. Runs the search in this thread (one
    process, ``candidates`` settings). Raises ``ValueError`` when the minutes cannot be
    replayed (no arrival rate)."""
    import os
    import tempfile

    from autoscaler.policy import PolicyConfig
    from autoscaler.sim.runner import Setup, prepare, slo_band
    from autoscaler.sim.traces import read_trace
    from autoscaler.sim.tune import tune

    p = settings.processes[process]
    text, _ = trace_csv(rows)
    band = (p.down_threshold_ms, p.up_threshold_ms)
    fitted = fit(rows, events, band, aggregate=p.aggregate or "p95")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{process}.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        trace = read_trace(path)
    setup = Setup(
        service_ms=fitted.service_ms or 100.0,
        concurrency=fitted.concurrency or 4,
        boot_s=45.0 if fitted.boot_s is None else fitted.boot_s,
        slo_ms=slo_ms,
        interval_s=settings.glob.interval,
        window_s=p.window,
        aggregate=p.aggregate or "p95",
        min_samples=p.min_samples,
    )
    prepared = prepare(trace, setup)
    env = settings.env
    low = p.min
    high = p.max if (p.var_prefix + "MAX") in env else max(p.max, 2 * prepared.peak_need)
    engine = PolicyConfig.from_settings(p)
    engine.low, engine.high = low, high
    engine, _ = slo_band(
        engine,
        slo_ms,
        up_set=(p.var_prefix + "UP_THRESHOLD") in env,
        down_set=(p.var_prefix + "DOWN_THRESHOLD") in env,
    )
    out = tune(prepared, setup, engine, (low, high), n=candidates, target=target, workers=1)
    today, best = out.default, out.best
    over_today = round((1.0 - today.slo_attainment) * today.minutes)
    over_best = round((1.0 - best.slo_attainment) * best.minutes)
    model = (
        f"{setup.service_ms:.0f} ms requests, {setup.concurrency} slots, {setup.boot_s:.0f} s boot"
    )
    head = f"tune on this week ({out.evaluated} settings tried, app fitted: {model}):"
    now = out.default_candidate.variables(p.var_prefix)
    changes = {k: v for k, v in out.best_candidate.variables(p.var_prefix).items() if now[k] != v}
    if not changes:
        return (
            f"{head} no change; today's settings cost {today.instance_hours:.1f} "
            f"instance-hours with {over_today} minutes over {slo_ms:g} ms"
        )
    settings_text = " ".join(f"{k}={v}" for k, v in changes.items())
    if not out.met:
        head += f" none kept {target:.1%} of minutes within {slo_ms:g} ms; the closest:"
    elif today.slo_attainment < target:
        head += (
            f" today's settings keep {today.slo_attainment:.2%} of minutes within {slo_ms:g} ms,"
            f" below {target:.1%};"
        )
    return (
        f"{head} set {settings_text}: {best.instance_hours:.1f} instance-hours and "
        f"{over_best} minutes over {slo_ms:g} ms, against {today.instance_hours:.1f} and "
        f"{over_today} with today's settings"
    )
