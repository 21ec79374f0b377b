"""Parse the request-start header that a router or proxy stamps on each request.

Pure and allocation-light: it runs on every request. Heroku and Railway send integer
milliseconds (``1570634024294``), nginx ``t=1512379167.574`` (seconds), Apache ``t=<µs>``,
Render an integer that may be µs or ns, Thruster ``t=<ms>``.

The unit is found by trying each of s, ms, µs and ns and keeping the one that puts the start
between ``FUTURE_MS`` ahead of now and ``PAST_MS`` behind it. The units are a thousandfold apart
and that band is about ten minutes wide, so at most one unit can fit. A value that fits none is
dropped and counted, never clamped into a sample: a garbage number must not read as "no queue".
A start slightly in the future (router and app clocks disagree) is clamped to 0 and counted.
"""

from __future__ import annotations

import re

#: A start this far behind now is not queueing (the routers time out long before): drop it.
PAST_MS = 600_000.0
#: A start up to this far ahead of now is clock skew: clamp the sample to 0 and count it.
FUTURE_MS = 10_000.0

OK = "ok"
SKEW = "skew"  # clamped to 0
ABSENT = "absent"  # no header: not counted as a drop, reported as requests without a sample
GARBAGE = "garbage"  # not a number in the accepted grammar
FUTURE = "future"  # further ahead than FUTURE_MS in every unit
PAST = "past"  # further behind than PAST_MS in every unit

# digits with an optional fraction; no sign, exponent, underscore, inf or nan (float() takes them)
_NUMBER = re.compile(rb"[0-9]{1,20}(?:\.[0-9]{0,12})?")
# ms per unit, largest first; the order only matters for naming the drop reason
_SCALES = (1000.0, 1.0, 0.001, 0.000001)


def queue_ms(raw: bytes | str | None, now_ms: float) -> tuple[float, str]:
    """Return ``(milliseconds waited, outcome)``; the milliseconds are meaningful only for
    ``OK`` and ``SKEW``. Never raises."""
    if raw is None:
        return 0.0, ABSENT
    if isinstance(raw, str):
        try:
            raw = raw.encode("ascii")
        except UnicodeEncodeError:
            return 0.0, GARBAGE
    comma = raw.find(b",")
    if comma >= 0:  # the header was set twice and joined: the first value is the outermost proxy
        raw = raw[:comma]
    raw = raw.strip()
    if raw[:2] in (b"t=", b"T="):
        raw = raw[2:]
    if not _NUMBER.fullmatch(raw):
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
