"""The recorder folds ticks into minutes, writes whole minutes only, and never stops scaling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoscaler.history import Event, Minute, Recorder, TickFacts
from autoscaler.stores.memory import MemoryStore

T0 = 1_767_225_600


def facts(signal: float | None, q: int = 2, **kw: object) -> TickFacts:
    return TickFacts("web", signal, signal is not None, q, **kw)  # type: ignore[arg-type]


def test_a_minute_is_written_when_the_next_begins_with_its_quantiles() -> None:
    store = MemoryStore()
    rec = Recorder(store)
    for i, s in enumerate([10.0, 20.0, 30.0, 40.0, None]):
        rec.tick(T0 + 5 * i, [facts(s, rate_per_s=10.0 * (i + 1))])
    assert store.read("web", T0, T0 + 60)[0] == []  # not finished yet
    rec.tick(T0 + 60, [facts(5.0, q=3)])
    (m,), _ = store.read("web", T0, T0 + 60)
    assert (m.p50, m.p95, m.max) == (20.0, 40.0, 40.0)
    assert (m.ticks, m.untrusted, m.quantity) == (5, 1, 2)
    assert m.rate == 30.0


def test_a_change_is_an_event_with_its_reason() -> None:
    store = MemoryStore()
    rec = Recorder(store)
    rec.tick(
        T0,
        [facts(300.0, q=2, changed=True, action="up", reason="above_band", desired=4)],
    )
    _, (event,) = store.read("web", T0, T0 + 60)
    assert (event.kind, event.reason, event.current, event.desired) == (
        "decision",
        "above_band",
        2,
        4,
    )
    assert event.text == "up 2 -> 4 (above_band)"


def test_a_follower_writes_nothing() -> None:
    store = MemoryStore()
    rec = Recorder(store)
    rec.tick(
        T0, [facts(300.0, changed=True, action="up", reason="above_band", desired=4)], leader=False
    )
    rec.tick(T0 + 60, [facts(1.0)], leader=False)
    assert store.read("web", 0, T0 * 2) == ([], [])


class Broken(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def write(self, minutes: Mapping[str, Sequence[Minute]], events: Sequence[Event]) -> None:
        if self.down:
            raise ConnectionError("store down")
        super().write(minutes, events)


def test_a_store_outage_is_reported_once_loses_only_its_minutes_and_recovers() -> None:
    store = Broken()
    told: list[str] = []
    recovered: list[bool] = []
    rec = Recorder(store, on_error=told.append, on_recover=lambda: recovered.append(True))
    for minute_i in range(4):
        rec.tick(T0 + 60 * minute_i, [facts(10.0)])
    assert told == ["ConnectionError: store down"]
    assert rec.failures == 3
    store.down = False
    rec.tick(T0 + 240, [facts(10.0)])
    rows, _ = store.read("web", 0, T0 * 2)
    assert [m.t for m in rows] == [T0 + 180]  # the minutes while it was down are lost, no more
    assert recovered == [True]


def test_the_peak_counts_only_once_the_formation_has_stood_a_minute() -> None:
    store = MemoryStore()
    rec = Recorder(store)
    for i in range(24):  # two minutes: 2 instances, then 4 from t=60 (booting: 2 serve)
        q, ready = (2, 2) if i < 12 else (4, 2 if i < 18 else 4)
        rec.tick(T0 + 5 * i, [facts(10.0, q=q, in_use=7.0, ready=ready)])
    rec.tick(T0 + 120, [facts(10.0, q=4, in_use=7.0, ready=4)])
    first, second = store.read("web", T0, T0 + 120)[0]
    assert first.peak is None  # the formation had not stood STEADY_S yet
    assert second.peak is None  # it changed, then instances were still booting
    for i in range(25, 48):
        rec.tick(T0 + 5 * i, [facts(10.0, q=4, in_use=7.0, ready=4)])
    rec.tick(T0 + 240, [facts(10.0, q=4, in_use=7.0, ready=4)])
    third = store.read("web", T0 + 180, T0 + 240)[0][0]
    assert third.peak == 7.0 / 4
