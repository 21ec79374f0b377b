"""Durations as config vars write them: ``250ms``, ``30s``, ``10m``, ``1h`` or a bare number."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)

#: The longest duration any setting accepts (a week); larger values are surely a typo.
MAX_SECONDS = 7 * 86400.0


def parse_duration(text: str, bare_unit: str = "s") -> float:
    """Return seconds. ``bare_unit`` is the unit of a number given without one.

    Raises ``ValueError`` with a message meant for the operator.
    """
    match = _RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (write e.g. 250ms, 30s, 10m, 1h)")
    number, unit = match.groups()
    seconds = float(number) * _UNITS[(unit or bare_unit).lower()]
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than a week")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form: ``250ms``, ``30s``, ``5m``, ``1h``, ``1m30s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60 or seconds % 60:
        if seconds >= 60:
            return f"{int(seconds // 60)}m{seconds % 60:g}s"
        return f"{seconds:g}s"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 60)}m"


def format_ms(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"
