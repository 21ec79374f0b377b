"""Every history store keeps what it is given, reads it back by range, and stays bounded."""

from __future__ import annotations

import time

from autoscaler.history import MAX_EVENTS, RETENTION_S, Event, HistoryStore, Minute

#: midnight UTC three days ago: recent, since Redis expires day keys on the real clock
T0 = (int(time.time()) // 86400 - 3) * 86400


def minute(t: int, p95: float = 40.0, quantity: int = 3) -> Minute:
    return Minute(t, p95 / 2, p95, p95 * 2, 12.5, 3.25, quantity, quantity, 12, 0)


def test_minutes_and_events_read_back_in_order_by_range(store: HistoryStore) -> None:
    rows = [minute(T0 + 60 * i, p95=float(i)) for i in range(5)]
    store.write({"web": rows[3:], "worker": [minute(T0)]}, [])
    store.write({"web": rows[:3]}, [Event(T0 + 130, "web", "decision", "up 3 -> 5", "above_band")])
    store.write({}, [Event(T0 + 10, "*", "alert", "platform unreachable")])
    got, events = store.read("web", T0 + 60, T0 + 240)
    assert [m.t for m in got] == [T0 + 60, T0 + 120, T0 + 180]
    assert got[1] == rows[2]
    assert [e.text for e in events] == ["up 3 -> 5"]
    _, events = store.read("web", T0, T0 + 3600)
    assert [e.kind for e in events] == ["alert", "decision"]
    assert store.processes() == ["web", "worker"]


def test_a_minute_written_twice_is_kept_once_with_the_latest_values(store: HistoryStore) -> None:
    store.write({"web": [minute(T0, quantity=2)]}, [])
    store.write({"web": [minute(T0, quantity=4)]}, [])
    got, _ = store.read("web", T0, T0 + 60)
    assert [m.quantity for m in got] == [4]


def test_a_range_across_days_reads_every_day(store: HistoryStore) -> None:
    days = [T0 + 86400 * d + 3600 for d in range(3)]
    store.write({"web": [minute(t) for t in days]}, [])
    got, _ = store.read("web", T0, T0 + 3 * 86400)
    assert [m.t for m in got] == days


def test_events_beyond_the_bound_are_dropped_oldest_first(store: HistoryStore) -> None:
    events = [Event(T0 + i, "web", "decision", f"e{i}") for i in range(MAX_EVENTS + 5)]
    store.write({"web": [minute(T0 + 100_000)]}, events)
    _, kept = store.read("web", T0, T0 + 200_000)
    assert len(kept) == MAX_EVENTS
    assert kept[0].text == "e5"


def test_what_is_older_than_the_retention_is_dropped(store: HistoryStore) -> None:
    old = T0 - RETENTION_S - 7200
    store.write({"web": [minute(old)]}, [Event(old, "web", "decision", "old")])
    store.write({"web": [minute(T0)]}, [Event(T0, "web", "decision", "new")])
    rows, events = store.read("web", old - 60, T0 + 60)
    assert [e.text for e in events] == ["new"]
    # Redis drops whole days by expiry (tested below); memory and PostgreSQL prune on write
    assert [m.t for m in rows][-1] == T0


def test_redis_day_keys_expire_after_the_retention(redis_store) -> None:  # type: ignore[no-untyped-def]
    redis_store.write({"web": [minute(T0)]}, [])
    keys = redis_store.client.keys("autoscaler:test:history:m:*")
    assert len(keys) == 1
    expire_at = redis_store.client.expiretime(keys[0])
    assert expire_at == T0 + 86400 + RETENTION_S


def test_named_values_are_kept_and_replaced(store: HistoryStore) -> None:
    assert store.get_meta("status:web") is None
    store.put_meta("status:web", "web: hold at 3")
    store.put_meta("status:web", "web: up 3 -> 5 (p95 340 ms)")
    assert store.get_meta("status:web") == "web: up 3 -> 5 (p95 340 ms)"


def test_a_store_read_again_sees_what_was_written_since_and_what_was_replaced(
    store: HistoryStore,
) -> None:
    """The Redis store keeps the days it parsed and reads only what was appended since."""
    store.write({"web": [minute(T0 + 60 * i) for i in range(3)]}, [])
    assert len(store.read("web", T0, T0 + 86400)[0]) == 3
    store.write({"web": [minute(T0 + 180), minute(T0 + 60, p95=99.0)]}, [])  # a minute again
    rows, _ = store.read("web", T0, T0 + 86400)
    assert [m.t for m in rows] == [T0, T0 + 60, T0 + 120, T0 + 180]
    assert rows[1].p95 == 99.0
    client = getattr(store, "client", None)
    if client is not None:  # the day's string expired and was written again, shorter
        for key in client.keys("*history:m:web:*"):
            client.delete(key)
        store.write({"web": [minute(T0 + 240, p95=7.0)]}, [])
        rows, _ = store.read("web", T0, T0 + 86400)
        assert [(m.t, m.p95) for m in rows] == [(T0 + 240, 7.0)]
