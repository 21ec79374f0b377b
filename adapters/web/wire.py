"""The request-queue-time wire format, version 1. Pure: no I/O.

Histograms are merged **in Redis**, as they arrive: every app process adds its interval's
counts into one hash per 5-second slot with ``HINCRBY``, so the daemon reads a handful of
already-merged hashes whatever the number of processes. Percentiles therefore come from the
merged histogram of every process, never from averaging per-process percentiles. The README
documents these keys for publishers in other languages; keep the two in step.

Keys, for process type ``P`` (e.g. ``web``):

- ``autoscaler:queue_time:v1:P:<slot>``, a hash; ``slot = floor(t / 5)`` with ``t`` the wall
  clock (epoch seconds) at the flush. Fields, all added with ``HINCRBY`` unless noted:
  ``<k>`` (a bucket index in decimal) = samples in bucket ``k``; ``n`` = samples; ``r`` =
  requests seen, sampled or not; ``f`` = flushes (heartbeats included); ``s`` = sum of the
  samples in ms (``HINCRBYFLOAT``); ``busy`` = requests in flight at the flush times the flush
  interval over 5 (``HINCRBYFLOAT``), so that a slot's ``busy`` is the fleet's in-flight count;
  ``skew`` = samples clamped to 0; ``d:<reason>`` = requests not sampled, by reason; ``v`` = 1
  and ``keep`` = retention in seconds (``HSET``). ``EXPIRE`` = ``keep``.
  Addition 1.1 (busy time; optional, ignored by older daemons): ``bs`` = seconds spent serving
  requests during the flush interval, summed over requests (the integral of the requests in
  flight, ``HINCRBYFLOAT``, left out when 0); ``bf`` = 1 per flush that reports ``bs``
  (``HINCRBY``), so that a reader knows whether every flush of a slot reported it.
- ``autoscaler:queue_time:v1:P:seen``, a sorted set: member = publisher id, score = ``t`` of
  its last flush; trimmed of publishers silent for ``keep`` seconds; ``EXPIRE`` = ``keep``.

A flush is one ``MULTI``/``EXEC`` so that a slot never holds half an interval.

A slot whose counts cannot come from publishers following this format is rejected
(``WireError``), never read as a signal: more than ``MAX_FLUSHES`` flushes, more requests
than ``MAX_PER_FLUSH`` per flush, more samples (plus requests not sampled) than
requests, more clamped samples than samples, more reporting flushes than flushes, a sum ``s``
that the buckets' spans cannot hold, or more time in flight than ``MAX_IN_FLIGHT`` requests
per process for the longest flush interval can make.

Bucket ``k`` holds queue times ``q`` (ms) with ``k = 0`` for ``q < 1`` and
``k = floor(ln q / ln 1.02) + 1`` otherwise, so bucket ``k >= 1`` spans ``[1.02^(k-1), 1.02^k)``
and is read back as its midpoint: at most 1% off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from autoscaler.redact import quote

VERSION = 1
SLOT_SECONDS = 5
GROWTH = 1.02
_LOG_GROWTH = math.log(GROWTH)
#: Buckets above this index cannot come from a queue time the parser accepts (> 600 s).
MAX_BUCKET = 1000
PREFIX = f"autoscaler:queue_time:v{VERSION}:"
AGGREGATES = ("avg", "p50", "p90", "p95", "p99", "max")
#: Bounds on a slot (what one 5-second slot of publishers can mean): the flushes in it (20,000
#: app processes flushing every second), requests per flush (100,000 requests/s in one app
#: process for the longest flush interval, 60 s), requests in flight in one app process.
MAX_FLUSHES = 100_000
MAX_INTERVAL_S = 60.0
MAX_PER_FLUSH = 100_000 * int(MAX_INTERVAL_S)
MAX_IN_FLIGHT = 100_000


def slot_of(t: float) -> int:
    return int(t // SLOT_SECONDS)


def slot_key(process: str, slot: int) -> str:
    return f"{PREFIX}{process}:{slot}"


def seen_key(process: str) -> str:
    return f"{PREFIX}{process}:seen"


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
    """A slot that is not valid version-1 data."""


@dataclass(slots=True)
class Histogram:
    """One interval's samples in one app process."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total_ms: float = 0.0

    def add(self, ms: float) -> None:
        k = 0 if ms < 1.0 else int(math.log(ms) / _LOG_GROWTH) + 1
        self.buckets[k] = self.buckets.get(k, 0) + 1
        self.count += 1
        self.total_ms += ms


@dataclass(frozen=True, slots=True)
class Increments:
    """What one flush adds to its slot hash."""

    ints: dict[str, int]  # HINCRBY
    floats: dict[str, float]  # HINCRBYFLOAT
    fixed: dict[str, str]  # HSET


def increments(
    hist: Histogram,
    *,
    interval: float,
    keep: float,
    requests: int,
    busy: int,
    skew: int,
    drops: Mapping[str, int],
    busy_s: float | None = None,
) -> Increments:
    """The slot-hash updates for one flush (a heartbeat when ``hist.count`` is 0).
    ``busy_s``: seconds spent serving requests in the interval (addition 1.1), ``None`` for a
    publisher that does not measure it."""
    ints = {str(k): c for k, c in hist.buckets.items() if c}
    ints["n"] = hist.count
    ints["r"] = requests
    ints["f"] = 1
    if skew:
        ints["skew"] = skew
    for reason, n in drops.items():
        if n:
            ints["d:" + reason] = n
    floats = {"s": round(hist.total_ms, 3)} if hist.count else {}
    if busy:
        floats["busy"] = round(busy * interval / SLOT_SECONDS, 3)
    if busy_s is not None:
        ints["bf"] = 1
        if busy_s > 0.0:
            floats["bs"] = round(busy_s, 4)
    return Increments(ints, floats, {"v": str(VERSION), "keep": f"{keep:g}"})


@dataclass(slots=True)
class Slot:
    """One decoded slot hash: the merged flushes of every process in those 5 seconds."""

    buckets: dict[int, int]
    count: int
    requests: int
    flushes: int
    total_ms: float
    busy: float
    skew: int
    keep: float
    drops: dict[str, int]
    busy_s: float = 0.0  # seconds spent serving requests, from the ``bf`` flushes (1.1)
    busy_flushes: int = 0  # flushes that report ``bs``


def _int(name: str, raw: bytes | str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise WireError(f"field {quote(name)} is {quote(raw)}, not an integer") from None
    if value < 0:
        raise WireError(f"field {quote(name)} is negative")
    return value


def _float(name: str, raw: bytes | str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise WireError(f"field {quote(name)} is {quote(raw)}, not a number") from None
    if not math.isfinite(value) or value < 0:
        raise WireError(f"field {quote(name)} is {value!r}")
    return value


# the slot's named fields: the attribute each one fills and how its value is read
_FIELDS: dict[str, tuple[str, Callable[[str, bytes | str], float]]] = {
    "n": ("count", _int),
    "r": ("requests", _int),
    "f": ("flushes", _int),
    "s": ("total_ms", _float),
    "busy": ("busy", _float),
    "skew": ("skew", _int),
    "bs": ("busy_s", _float),
    "bf": ("busy_flushes", _int),
    "keep": ("keep", _float),
}


def decode_slot(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> Slot:
    """Validate one slot hash (as ``HGETALL`` returns it); unknown fields are ignored so that
    fields added later by compatible publishers do not break older daemons."""
    slot = Slot({}, 0, 0, 0, 0.0, 0.0, 0, math.inf, {})
    buckets = slot.buckets
    version = None
    for raw_name, raw in fields.items():
        if raw_name.isdigit():  # the bulk of the fields: kept lean
            try:
                k, c = int(raw_name), int(raw)
            except ValueError:
                k, c = 0, -1
            if c < 0 or k > MAX_BUCKET:
                raise WireError(
                    f"bucket {quote(raw_name)} holds {quote(raw)} (or is above {MAX_BUCKET})"
                )
            buckets[k] = c
            continue
        name = raw_name.decode("ascii", "replace") if isinstance(raw_name, bytes) else raw_name
        spec = _FIELDS.get(name)
        if spec is not None:
            setattr(slot, spec[0], spec[1](name, raw))
        elif name == "v":
            version = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
        elif name.startswith("d:"):
            slot.drops[name[2:]] = _int(name, raw)
    if version != str(VERSION):
        raise WireError(f"wire version {quote(version)} is not {VERSION}")
    if sum(slot.buckets.values()) != slot.count:
        raise WireError(
            f"buckets hold {sum(slot.buckets.values())} samples but 'n' is {slot.count}"
        )
    _check_bounds(slot)
    return slot


def _check_bounds(slot: Slot) -> None:
    """Reject counts that no publisher following the format can produce (see the module
    docstring): a slot with ``n = r = 10**30`` must not read as a valid queue time and rate."""
    if slot.flushes > MAX_FLUSHES:
        raise WireError(f"'f' is {slot.flushes}: more than {MAX_FLUSHES} flushes in one slot")
    flushes = max(1, slot.flushes)
    if slot.requests > flushes * MAX_PER_FLUSH:
        raise WireError(
            f"'r' is {slot.requests} in {flushes} flush(es): more than {MAX_PER_FLUSH} "
            "requests per flush"
        )
    # samples lost in earlier flushes (a Redis outage) are not requests of this slot; they are
    # only shown, never read as a signal, so a long outage's count is not bounded here
    not_sampled = sum(slot.drops.values()) - slot.drops.get("lost", 0)
    if slot.count + not_sampled > slot.requests:
        raise WireError(
            f"'n' is {slot.count} and {not_sampled} request(s) were not sampled, "
            f"but 'r' (every request) is {slot.requests}"
        )
    if slot.skew > slot.count:
        raise WireError(f"'skew' is {slot.skew}, more than the {slot.count} samples")
    if slot.busy_flushes > slot.flushes:
        raise WireError(f"'bf' is {slot.busy_flushes}, more than the {slot.flushes} flushes")
    in_flight = flushes * MAX_IN_FLIGHT
    if slot.busy > in_flight * MAX_INTERVAL_S / SLOT_SECONDS:
        raise WireError(f"'busy' is {slot.busy:g}: more than {MAX_IN_FLIGHT} in flight each")
    if slot.busy_s > in_flight * MAX_INTERVAL_S:
        raise WireError(f"'bs' is {slot.busy_s:g}: more than {MAX_IN_FLIGHT} in flight each")
    low = high = 0.0
    for k, c in slot.buckets.items():
        if c:
            low += c * (GROWTH ** (k - 1) if k > 0 else 0.0)
            high += c * GROWTH**k
    slack = 0.001 * flushes  # each flush rounds its sum to 3 decimals
    if not low * (1 - 1e-6) - slack <= slot.total_ms <= high * (1 + 1e-6) + slack:
        raise WireError(
            f"'s' is {slot.total_ms:g} ms but the buckets hold {low:.3f} to {high:.3f} ms"
        )


class Merged:
    """The union of many slots: exact count and sum, merged bucket counts."""

    __slots__ = ("buckets", "count", "total_ms")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ms = 0.0

    def add(self, slot: Slot) -> None:
        buckets = self.buckets
        for k, c in slot.buckets.items():
            buckets[k] = buckets.get(k, 0) + c
        self.count += slot.count
        self.total_ms += slot.total_ms

    def value(self, aggregate: str) -> float:
        """``avg``, ``max`` or a nearest-rank percentile ``pNN``; 0.0 when empty. ``max`` is
        the highest non-empty bucket's value (within 1%)."""
        if not self.count:
            return 0.0
        if aggregate == "avg":
            return self.total_ms / self.count
        if aggregate == "max":
            return self.percentile(1.0)
        return self.percentile(float(aggregate[1:]) / 100.0)

    def percentile(self, q: float) -> float:
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            if seen >= rank:
                return bucket_value(k)
        return bucket_value(max(self.buckets))


def merge(slots: Iterable[Slot]) -> Merged:
    merged = Merged()
    for slot in slots:
        merged.add(slot)
    return merged
