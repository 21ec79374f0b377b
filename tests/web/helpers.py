"""Pure helpers shared by the web tests."""

from __future__ import annotations

import math

from autoscaler.web import wire


def flush(values: list[float], **kw: object) -> wire.Increments:
    """One app process's flush of these queue times (keyword arguments override the rest)."""
    hist = wire.Histogram()
    for v in values:
        hist.add(v)
    args: dict[str, object] = {
        "interval": 5.0,
        "keep": 300.0,
        "requests": len(values),
        "busy": 0,
        "skew": 0,
        "drops": {},
    }
    args.update(kw)
    return wire.increments(hist, **args)  # type: ignore[arg-type]


def slot_hash(*flushes: wire.Increments) -> dict[bytes, bytes]:
    """What HINCRBY, HINCRBYFLOAT and HSET leave in a slot hash after these flushes
    (the real-Redis equivalent is tested in test_publisher)."""
    out: dict[str, float | str] = {}
    for inc in flushes:
        for name, n in (*inc.ints.items(), *inc.floats.items()):
            out[name] = float(out.get(name, 0)) + n
        out.update(inc.fixed)
    encoded: dict[bytes, bytes] = {}
    for k, v in out.items():
        text = v if isinstance(v, str) else repr(v) if k in ("s", "busy", "bs") else str(int(v))
        encoded[k.encode()] = text.encode()
    return encoded


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]
