"""The request-queue-time wire format (version 1): one JSON aggregate per app process per flush.

Pure: no I/O. The app side builds aggregates with ``Histogram`` and ``encode``; the daemon side
reads them back with ``decode`` and merges them with ``Merged``. The README documents this
format for publishers in other languages; keep the two in step.

Each aggregate is a member of the sorted set ``key_for(process)``, scored by ``t``::

    {"v": 1, "id": "web.1:4242", "t": 1764200005.0, "i": 5.0, "keep": 300,
     "r": 130, "n": 120, "s": 5230.5, "m": 310.2, "b": [0, 3, 120, 10, ...],
     "busy": 4, "skew": 0, "drop": {"past": 1}}

Percentiles are computed from merged histograms, never by averaging per-process percentiles.
Bucket ``k`` holds queue times ``q`` (ms) with ``k = 0`` for ``q < 1`` and
``k = floor(ln q / ln 1.02) + 1`` otherwise, so bucket ``k >= 1`` spans ``[1.02^(k-1), 1.02^k)``
and is read back as its midpoint: at most 1% off.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VERSION = 1
GROWTH = 1.02
_LOG_GROWTH = math.log(GROWTH)
#: Buckets above this index cannot come from a queue time the parser accepts (> 600 s).
MAX_BUCKET = 1000
KEY_PREFIX = "autoscaler:queue_time:"
AGGREGATES = ("avg", "p50", "p90", "p95", "p99", "max")


def key_for(process: str) -> str:
    return KEY_PREFIX + process


def bucket_of(ms: float) -> int:
    if ms < 1.0:
        return 0
    return int(math.log(ms) / _LOG_GROWTH) + 1


def bucket_value(k: int) -> float:
    """The value a bucket stands for: the midpoint of its span (0.5 ms for bucket 0)."""
    if k <= 0:
        return 0.5
    return (GROWTH ** (k - 1) + GROWTH**k) / 2.0


class WireError(ValueError):
    """An aggregate that is not valid version-1 data."""


@dataclass(slots=True)
class Histogram:
    """One interval's measurements in one app process. Mutated under the caller's lock."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        k = 0 if ms < 1.0 else int(math.log(ms) / _LOG_GROWTH) + 1
        self.buckets[k] = self.buckets.get(k, 0) + 1
        self.count += 1
        self.total_ms += ms
        if ms > self.max_ms:  # noqa: PLR1730 - hot path, cheaper than max()
            self.max_ms = ms


def encode(
    hist: Histogram,
    *,
    publisher: str,
    t: float,
    interval: float,
    keep: float,
    requests: int,
    busy: int,
    skew: int,
    drops: Mapping[str, int],
) -> str:
    """The JSON member for one interval (a heartbeat when ``hist.count`` is 0)."""
    flat: list[int] = []
    for k in sorted(hist.buckets):
        flat.append(k)
        flat.append(hist.buckets[k])
    doc = {
        "v": VERSION,
        "id": publisher,
        "t": round(t, 3),
        "i": interval,
        "keep": keep,
        "r": requests,
        "n": hist.count,
        "s": round(hist.total_ms, 3),
        "m": round(hist.max_ms, 3),
        "b": flat,
        "busy": busy,
        "skew": skew,
        "drop": {k: v for k, v in drops.items() if v},
    }
    return json.dumps(doc, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One decoded member."""

    publisher: str
    t: float
    keep: float
    requests: int
    count: int
    total_ms: float
    max_ms: float
    buckets: list[int]  # flat pairs k0, c0, k1, c1, ...
    busy: int
    skew: int
    drops: dict[str, int]


def _num(doc: Mapping[str, object], name: str, *, integer: bool = False) -> float:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"field {name!r} is not a number")
    if not math.isfinite(value) or value < 0 or (integer and not isinstance(value, int)):
        raise WireError(f"field {name!r} is {value!r}")
    return value


def decode(member: bytes | str) -> Aggregate:
    """Validate one member; raise ``WireError`` on anything that is not version-1 data."""
    try:
        doc = json.loads(member)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise WireError("not a JSON object")
    if doc.get("v") != VERSION:
        raise WireError(f"wire version {doc.get('v')!r} is not {VERSION}")
    count = int(_num(doc, "n", integer=True))
    flat = doc.get("b")
    if not isinstance(flat, list) or len(flat) % 2:
        raise WireError("field 'b' is not a list of bucket, count pairs")
    total = 0
    for x in flat:
        if isinstance(x, bool) or not isinstance(x, int) or x < 0:
            raise WireError("field 'b' holds something other than non-negative integers")
    for i in range(0, len(flat), 2):
        if flat[i] > MAX_BUCKET:
            raise WireError(f"bucket {flat[i]} is above {MAX_BUCKET}")
        total += flat[i + 1]
    if total != count:
        raise WireError(f"buckets hold {total} samples but 'n' is {count}")
    drops = doc.get("drop", {})
    if not isinstance(drops, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in drops.values()
    ):
        raise WireError("field 'drop' is not an object of counts")
    return Aggregate(
        publisher=str(doc.get("id", "")),
        t=_num(doc, "t"),
        keep=_num(doc, "keep") if "keep" in doc else math.inf,
        requests=int(_num(doc, "r", integer=True)) if "r" in doc else count,
        count=count,
        total_ms=_num(doc, "s"),
        max_ms=_num(doc, "m"),
        buckets=flat,
        busy=int(_num(doc, "busy", integer=True)) if "busy" in doc else 0,
        skew=int(_num(doc, "skew", integer=True)) if "skew" in doc else 0,
        drops={str(k): int(v) for k, v in drops.items()},
    )


class Merged:
    """The union of many aggregates: exact count, sum and max, merged bucket counts."""

    __slots__ = ("buckets", "count", "max_ms", "total_ms")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ms = 0.0
        self.max_ms = 0.0

    def add(self, agg: Aggregate) -> None:
        if not agg.count:
            return
        buckets = self.buckets
        flat = agg.buckets
        it = iter(flat)
        for k, c in zip(it, it, strict=True):
            buckets[k] = buckets.get(k, 0) + c
        self.count += agg.count
        self.total_ms += agg.total_ms
        self.max_ms = max(self.max_ms, agg.max_ms)

    def value(self, aggregate: str) -> float:
        """``avg``, ``max`` or a nearest-rank percentile ``pNN``; 0.0 when empty."""
        if not self.count:
            return 0.0
        if aggregate == "avg":
            return self.total_ms / self.count
        if aggregate == "max":
            return self.max_ms
        return self.percentile(float(aggregate[1:]) / 100.0)

    def percentile(self, q: float) -> float:
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            if seen >= rank:
                return min(bucket_value(k), self.max_ms)
        return self.max_ms


def merge(aggs: Iterable[Aggregate]) -> Merged:
    merged = Merged()
    for agg in aggs:
        merged.add(agg)
    return merged
