"""Parse the request-start header that a router or proxy stamps on each request.

Pure and cheap: the flusher thread runs it once per request. Heroku and Railway send integer
milliseconds (``1570634024294``), nginx ``t=1512379167.574`` (seconds), Apache ``t=<µs>``,
Render an integer that may be µs or ns, Thruster ``t=<ms>``.

The unit is found by trying each of s, ms, µs and ns and keeping the one that puts the start
between ``FUTURE_MS`` ahead of now and ``PAST_MS`` behind it. The units are a thousandfold apart
and that band is about ten minutes wide, so at most one unit can fit. A value that fits none is
dropped and counted, never clamped into a sample: a garbage number must not read as "no queue".
A start slightly in the future (router and app clocks disagree) is clamped to 0 and counted.

A header can hold several values: set twice and joined with ``,`` by a server, or stamped by
two proxies (``servera t=<µs>, serverb t=<µs>``), or with more fields than the start (Apache's
``t=%t D=%D``: ``t=<µs> D=<µs>``). Each comma-separated value is either a bare number or holds
one ``t=<number>`` among space-separated words; of the values that fit a unit, the earliest
start counts (the request's time in front of the outermost proxy too), as New Relic's agents do.
"""

from __future__ import annotations

#: A start this far behind now is not queueing (the routers time out long before): drop it.
PAST_MS = 600_000.0
#: A start up to this far ahead of now is clock skew: clamp the sample to 0 and count it.
FUTURE_MS = 10_000.0

OK = "ok"
SKEW = "skew"  # clamped to 0
ABSENT = "absent"  # no header (e.g. a health check from inside the platform): not a sample
GARBAGE = "garbage"  # not a number in the accepted grammar
FUTURE = "future"  # further ahead than FUTURE_MS in every unit
PAST = "past"  # further behind than PAST_MS in every unit

#: At most this many comma-separated values of one header are read (the rest are ignored).
MAX_VALUES = 8

# ms per unit; ms first as the most common (Heroku, Railway). The order does not change the
# result (at most one unit fits), only the work done.
_SCALES = (1.0, 1000.0, 0.001, 0.000001)


def queue_ms(raw: bytes | str | None, now_ms: float) -> tuple[float, str]:
    """Return ``(milliseconds waited, outcome)``; the milliseconds are meaningful only for
    ``OK`` and ``SKEW``. Never raises.

    Accepted: optional ``t=``, then ASCII digits with an optional fraction (no sign, exponent,
    underscore, ``inf`` or ``nan``, all of which ``float()`` would take), surrounding spaces.
    Several values (see the module docstring): the earliest start that fits a unit; when none
    fits, the outcome of the first value."""
    if raw is None:
        return 0.0, ABSENT
    if not isinstance(raw, str):
        try:
            raw = raw.decode("ascii")
        except (UnicodeDecodeError, AttributeError):
            return 0.0, GARBAGE
    if "," not in raw:
        return _one(raw, now_ms)
    best, best_outcome, first_outcome = 0.0, "", ""
    for part in raw.split(",", MAX_VALUES)[:MAX_VALUES]:
        ms, outcome = _one(part, now_ms)
        first_outcome = first_outcome or outcome
        if outcome in (OK, SKEW) and (not best_outcome or ms > best):
            best, best_outcome = ms, outcome
    if best_outcome:
        return best, best_outcome
    return 0.0, first_outcome


def _one(raw: str, now_ms: float) -> tuple[float, str]:
    """One value: a bare number, or one ``t=<number>`` among space-separated words."""
    raw = raw.strip(" \t")
    if " " in raw or "\t" in raw:
        stamps = [w for w in raw.split() if w[:2] in ("t=", "T=")]
        if len(stamps) != 1:
            return 0.0, GARBAGE
        raw = stamps[0]
    if raw[:2] in ("t=", "T="):
        raw = raw[2:]
    whole, _, fraction = raw.partition(".")
    if not (
        raw.isascii()
        and whole.isdigit()
        and len(whole) <= 20
        and (fraction.isdigit() or not fraction)
        and len(fraction) <= 12
    ):
        return 0.0, GARBAGE
    value = float(raw)
    for scale in _SCALES:
        waited = now_ms - value * scale
        if waited >= 0.0:
            if waited <= PAST_MS:
                return waited, OK
        elif waited >= -FUTURE_MS:
            return 0.0, SKEW
    return 0.0, _miss_reason(value, now_ms)


def _miss_reason(value: float, now_ms: float) -> str:
    """Name why no unit fitted, using the unit whose magnitude is closest to now."""
    start = min((value * s for s in _SCALES), key=lambda ms: abs(ms - now_ms))
    return FUTURE if start > now_ms else PAST
