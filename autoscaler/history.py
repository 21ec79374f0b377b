"""The daemon's history: one row per process per minute, and the events that changed something.

What a minute keeps (``Minute``): the signal as the policy read it each tick (the configured
aggregate, p95 by default) summarised over the minute (its median, 95th percentile and maximum),
the mean arrival rate and requests in flight where the source reports them, the quantity and
the serving instances at the minute's end, and how many ticks had no trusted signal. Events
(``Event``) are the decisions that changed something (with their reason), alerts, and config
changes. The ``Recorder`` folds tick reports into minutes and hands finished minutes and events
to a ``HistoryStore`` (Redis, PostgreSQL or memory: ``autoscaler/stores``).

The store lives where the app's data already is (``AUTOSCALER_HISTORY``, default ``auto``):
Redis when ``AUTOSCALER_REDIS_URL`` or ``REDIS_URL`` is set, else PostgreSQL when
``DATABASE_URL`` is set, else memory on the ``sim`` platform, else none; ``off`` keeps none.
Keys and rows are named by ``history_name`` so that the dashboard, mounted in the app with the
same config vars, reads what the daemon wrote.

Recording never stops scaling: a store that fails is counted, logged once per outage, and the
minutes it missed are dropped (the daemon does not buffer without bound). Only the leader
records, so two copies never write the same minute twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import Field, asdict, dataclass, field
from typing import Any, ClassVar, Protocol, Self

#: how long the stores keep minutes and events (seconds): the dashboard's longest range plus a day
RETENTION_S = 15 * 86400
#: how long a formation must have stood before its requests in service count for ``peak`` (s):
#: longer than a source's window, so that none of them was served by instances since stopped
STEADY_S = 60.0
#: the most events a store keeps per process (a flapping process must not fill the store)
MAX_EVENTS = 20_000


class _Row:
    """A stored row (``Minute``, ``Event``): one compact JSON object, ``None`` fields left out;
    fields a row does not know are ignored when read back, missing ones read as ``None``."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def to_json(self) -> str:
        return json.dumps(_compact(asdict(self)), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        data = json.loads(text)
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Minute(_Row):
    """One process's minute. ``t`` is the minute's start (epoch seconds, a multiple of 60)."""

    t: int
    p50: float | None  # median of the minute's per-tick signal (ms)
    p95: float | None
    max: float | None
    rate: float | None  # mean arrivals per second, where the source reports them
    in_use: float | None  # mean requests being served at once, where the app reports it
    quantity: int | None  # at the minute's last tick
    ready: int | None  # serving instances at the minute's last tick, where the platform says
    ticks: int  # ticks in the minute
    untrusted: int  # ticks whose signal was missing, stale or failed
    #: the most requests in service per serving instance at any tick of the minute whose
    #: formation had stood for ``STEADY_S``
    peak: float | None = None

    def to_line(self) -> str:
        """The minute as one compact CSV line (fields in declaration order, empty for None)."""
        return ",".join(_short(getattr(self, k)) for k in self.__dataclass_fields__) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Minute:
        parts = line.split(",")
        if len(parts) == len(_KINDS) - 1:  # written before ``peak`` was kept
            parts.append("")
        if len(parts) != len(_KINDS):
            raise ValueError(f"a history line has {len(parts)} fields, not {len(_KINDS)}")
        # spelled out (the dashboard reads 20,160 lines a process for 14 days): _KINDS's order
        t, p50, p95, top, rate, in_use, quantity, ready, ticks, untrusted, peak = parts
        return cls(
            int(t),
            float(p50) if p50 else None,
            float(p95) if p95 else None,
            float(top) if top else None,
            float(rate) if rate else None,
            float(in_use) if in_use else None,
            int(quantity) if quantity else None,
            int(ready) if ready else None,
            int(ticks),
            int(untrusted),
            float(peak) if peak else None,
        )


_KINDS: tuple[Callable[[str], Any], ...] = (
    int,
    float,
    float,
    float,
    float,
    float,
    int,
    int,
    int,
    int,
    float,
)


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else str(round(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class Event(_Row):
    """Something that happened: ``kind`` is ``decision``, ``alert`` or ``config``."""

    t: float  # wall-clock epoch seconds
    process: str  # ``*`` for events of the whole daemon (alerts, config)
    kind: str
    text: str  # one sentence a person reads
    reason: str | None = None  # decisions: the policy's reason code
    current: int | None = None
    desired: int | None = None


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    """Round floats to what a chart needs and drop ``None``s: a minute is stored 1,440 times a
    day per process."""
    return {
        key: (round(value, 3) if abs(value) < 100 else round(value, 1))
        if isinstance(value, float)
        else value
        for key, value in data.items()
        if value is not None
    }


class HistoryStore(Protocol):
    """Where minutes and events are kept (``autoscaler/stores``)."""

    def write(self, minutes: Mapping[str, Sequence[Minute]], events: Sequence[Event]) -> None:
        """Keep these; older than ``RETENTION_S`` may be dropped. Raises on failure."""
        ...

    def read(self, process: str, since: float, until: float) -> tuple[list[Minute], list[Event]]:
        """The minutes and events of ``process`` (events of ``*`` included) in [since, until)."""
        ...

    def processes(self) -> list[str]:
        """The processes that have history."""
        ...

    def put_meta(self, key: str, value: str) -> None:
        """Keep a small named value (the settings in force, each process's state sentence)."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def close(self) -> None: ...


class Mean:
    """The mean of the values given that are known: ``None`` is left out, and the mean of
    none is ``None`` (unknown, not zero)."""

    __slots__ = ("n", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.n = 0

    def add(self, value: float | None) -> None:
        if value is not None:
            self.total += value
            self.n += 1

    def value(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass(slots=True)
class _Open:
    """The minute being filled for one process."""

    t: int
    signals: list[float] = field(default_factory=list)
    rate: Mean = field(default_factory=Mean)
    in_use: Mean = field(default_factory=Mean)
    quantity: int | None = None
    ready: int | None = None
    ticks: int = 0
    untrusted: int = 0
    peak: float | None = None

    def close(self) -> Minute:
        values = sorted(self.signals)
        return Minute(
            t=self.t,
            p50=_quantile(values, 0.5),
            p95=_quantile(values, 0.95),
            max=values[-1] if values else None,
            rate=self.rate.value(),
            in_use=self.in_use.value(),
            quantity=self.quantity,
            ready=self.ready,
            ticks=self.ticks,
            untrusted=self.untrusted,
            peak=self.peak,
        )


def _quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted ``values`` (``None`` for none)."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


@dataclass(frozen=True, slots=True)
class TickFacts:
    """What the recorder needs of one process on one tick (the loop's report gives it)."""

    process: str
    signal_ms: float | None
    trusted: bool
    quantity: int | None
    ready: int | None = None
    rate_per_s: float | None = None
    in_use: float | None = None
    changed: bool = False  # the decision changed the quantity
    action: str = "hold"
    reason: str | None = None
    desired: int | None = None


class Recorder:
    """Folds ticks into minutes and writes each finished minute (and every event) to the store.

    ``tick`` is called once per daemon tick with the facts of every process; a minute is written
    when a tick of a later minute arrives (so the store sees whole minutes only). ``alert`` and
    ``config`` record events of the whole daemon. ``on_error`` is told once per outage.
    """

    def __init__(
        self,
        store: HistoryStore,
        *,
        on_error: Callable[[str], None] | None = None,
        on_recover: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.on_error = on_error
        self.on_recover = on_recover
        self.failures = 0  # writes that failed (each loses what it carried)
        self.written_minutes = 0
        self._open: dict[str, _Open] = {}
        self._events: list[Event] = []
        self._down = False
        self._formation: dict[str, tuple[tuple[int | None, int | None], float]] = {}

    def tick(self, wall: float, facts: Iterable[TickFacts], *, leader: bool = True) -> None:
        minute = int(wall // 60) * 60
        finished: dict[str, list[Minute]] = {}
        for f in facts:
            current = self._open.get(f.process)
            if current is not None and current.t != minute:
                finished.setdefault(f.process, []).append(current.close())
                current = None
            if current is None:
                current = self._open[f.process] = _Open(minute)
            current.ticks += 1
            if f.trusted and f.signal_ms is not None:
                current.signals.append(f.signal_ms)
            else:
                current.untrusted += 1
            current.rate.add(f.rate_per_s)
            current.in_use.add(f.in_use)
            if f.in_use is not None:
                serving = f.ready if f.ready else f.quantity
                steady = self._steady(f.process, f.quantity, f.ready, wall)
                if serving and steady:
                    per = f.in_use / serving
                    if current.peak is None or per > current.peak:
                        current.peak = per
            current.quantity = f.quantity
            current.ready = f.ready
            if f.changed:
                self._events.append(
                    Event(
                        wall,
                        f.process,
                        "decision",
                        f"{f.action} {f.quantity} -> {f.desired} ({f.reason})",
                        f.reason,
                        f.quantity,
                        f.desired,
                    )
                )
        if not leader:  # a follower keeps nothing: the leader writes the history
            self._events.clear()
            return
        if finished or self._events:
            self._flush(finished)

    def _steady(self, process: str, quantity: int | None, ready: int | None, wall: float) -> bool:
        """The formation has not changed for ``STEADY_S`` and every instance serves: the
        requests in service over the source's window were served by these instances."""
        key = (quantity, ready)
        last = self._formation.get(process)
        if last is None or last[0] != key:
            self._formation[process] = (key, wall)
            return False
        return wall - last[1] >= STEADY_S and (ready is None or ready == quantity)

    def alert(self, wall: float, text: str) -> None:
        self._events.append(Event(wall, "*", "alert", text))

    def config(self, wall: float, text: str) -> None:
        self._events.append(Event(wall, "*", "config", text))

    def flush(self) -> None:
        """Write what is still open (at shutdown): the last partial minutes and the events."""
        finished = {p: [o.close()] for p, o in self._open.items() if o.ticks}
        self._open.clear()
        self._flush(finished)

    def _flush(self, finished: Mapping[str, Sequence[Minute]]) -> None:
        events, self._events = self._events, []
        try:
            self.store.write(finished, events)
        except Exception as exc:  # never stop scaling for the history
            self.failures += 1
            if not self._down:
                self._down = True
                if self.on_error is not None:
                    self.on_error(f"{type(exc).__name__}: {exc}")
            return
        self.written_minutes += sum(len(m) for m in finished.values())
        if self._down:
            self._down = False
            if self.on_recover is not None:
                self.on_recover()


def history_name(env: Mapping[str, str]) -> str:
    """One name per app, from the config vars the daemon and the app's web processes share:
    ``AUTOSCALER_LOCK_NAME`` where set, else the platform and the app."""
    explicit = (env.get("AUTOSCALER_LOCK_NAME") or "").strip()
    if explicit:
        return explicit
    platform = (env.get("AUTOSCALER_PLATFORM") or "sim").strip().lower() or "sim"
    app = {
        "heroku": env.get("HEROKU_APP_NAME"),
        "fly": env.get("FLY_APP_NAME"),
        "railway": env.get("RAILWAY_ENVIRONMENT_ID"),
    }.get(platform)
    if platform == "render":
        ids = sorted(v for k, v in env.items() if k.endswith("_RENDER_SERVICE_ID") and v)
        app = ids[0] if ids else None
    app = (app or "").strip()
    return f"autoscaler:{platform}:{app}" if app else f"autoscaler:{platform}"


def store_kind(env: Mapping[str, str]) -> str:
    """``redis``, ``postgres``, ``memory`` or ``off``, as ``AUTOSCALER_HISTORY`` asks."""
    kind = (env.get("AUTOSCALER_HISTORY") or "auto").strip().lower()
    if kind != "auto":
        return kind
    if env.get("AUTOSCALER_REDIS_URL") or env.get("REDIS_URL"):
        return "redis"
    if env.get("DATABASE_URL"):
        return "postgres"
    platform = (env.get("AUTOSCALER_PLATFORM") or "sim").strip().lower()
    return "memory" if platform in ("", "sim") else "off"


def seed(
    store: HistoryStore, processes: Sequence[str], days: float, end: float, seed_value: int = 1
) -> None:
    """Fill ``store`` with ``days`` of a plausible, seeded history ending at ``end``: a daily
    cycle of traffic, the quantity following it with a scale event at each change, and one
    alert. For the dashboard's tests, screenshots and demo; never used by the daemon."""
    import random

    rng = random.Random(seed_value)
    start = int((end - days * 86400) // 60) * 60
    for i, process in enumerate(processes):
        minutes: list[Minute] = []
        events: list[Event] = []
        quantity = 2
        for t in range(start, int(end), 60):
            phase = math.sin(2 * math.pi * ((t % 86400) / 86400 - 0.3))
            rate = max(0.5, (40 + 30 * phase) * (1 + 0.1 * rng.random()) / (i + 1))
            need = max(1, math.ceil(rate / 10))
            p95 = max(0.0, 60 * rate / (quantity * 10) ** 1.5 + rng.gauss(0, 5))
            if need != quantity and rng.random() < 0.2:
                action, reason = ("up", "above_band") if need > quantity else ("down", "below_band")
                text = f"{action} {quantity} -> {need} ({reason})"
                events.append(Event(t + 30, process, "decision", text, reason, quantity, need))
                quantity = need
            minutes.append(
                Minute(t, p95 / 3, p95, p95 * 2.5, rate, rate * 0.08, quantity, quantity, 12, 0)
            )
        store.write({process: minutes}, events)
        store.put_meta(f"status:{process}", f"{process}: hold at {quantity} (seeded history)")
        store.put_meta(f"learned:{process}", json.dumps({"capacity": 10.0, "capacity_sure": True}))
    store.write({}, [Event(end - 3 * 3600, "*", "alert", "platform unreachable for 2 minutes")])
    store.put_meta("clock", str(end))
