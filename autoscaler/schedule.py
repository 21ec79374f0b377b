"""Time-of-day overrides of a process's bounds: ``mon-fri 08:00-18:00 min=4; sat,sun max=3``.

Rules are separated by ``;``. A rule is an optional day list (``mon``, ``mon-fri``, ``sat,sun``,
``daily``), an optional time range ``HH:MM-HH:MM`` (end exclusive; a range that ends before it
starts runs past midnight), then one or both of ``min=N`` and ``max=N``. When several rules match
at a moment, later rules override earlier ones for the bounds they set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)-([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Rule:
    days: frozenset[int]  # 0 = Monday
    start_min: int  # minutes since midnight, inclusive
    end_min: int  # exclusive; < start means it wraps past midnight
    min: int | None
    max: int | None

    def matches(self, weekday: int, minute: int) -> bool:
        if self.start_min == self.end_min:  # whole day
            return weekday in self.days
        if self.start_min < self.end_min:
            return weekday in self.days and self.start_min <= minute < self.end_min
        # wraps midnight: the part after midnight belongs to the previous day's rule
        if minute >= self.start_min:
            return weekday in self.days
        return minute < self.end_min and (weekday - 1) % 7 in self.days


@dataclass(frozen=True, slots=True)
class Schedule:
    rules: tuple[Rule, ...]
    tz: ZoneInfo

    def bounds(self, wall: float, low: int, high: int) -> tuple[int, int]:
        """The bounds in force at ``wall`` (epoch seconds), given the base bounds."""
        local = datetime.fromtimestamp(wall, self.tz)
        weekday, minute = local.weekday(), local.hour * 60 + local.minute
        for rule in self.rules:
            if rule.matches(weekday, minute):
                if rule.min is not None:
                    low = rule.min
                if rule.max is not None:
                    high = rule.max
        return (min(low, high), high)


def _parse_days(text: str) -> frozenset[int]:
    text = text.lower()
    if text in ("daily", "*", "all", "every"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, last = part.split("-", 1)
            if first not in _DAYS or last not in _DAYS:
                raise ValueError(f"unknown day range {part!r} (use mon..sun)")
            i, j = _DAYS.index(first), _DAYS.index(last)
            k = i
            while True:
                days.add(k)
                if k == j:
                    break
                k = (k + 1) % 7
        elif part in _DAYS:
            days.add(_DAYS.index(part))
        else:
            raise ValueError(f"unknown day {part!r} (use mon..sun, ranges like mon-fri)")
    return frozenset(days)


def parse_schedule(text: str, tz: ZoneInfo) -> Schedule:
    """Parse a schedule; raises ``ValueError`` naming the offending rule."""
    rules = [_parse_rule(chunk) for raw in text.split(";") if (chunk := raw.strip())]
    if not rules:
        raise ValueError("empty schedule")
    return Schedule(tuple(rules), tz)


def _parse_rule(chunk: str) -> Rule:
    days = frozenset(range(7))
    start = end = 0
    low: int | None = None
    high: int | None = None
    seen_time = seen_days = False
    for token in chunk.split():
        if "=" in token:
            key, value = _parse_bound(chunk, token)
            if key == "min":
                low = value
            else:
                high = value
        elif _TIME.match(token):
            if seen_time:
                raise ValueError(f"rule {chunk!r}: more than one time range")
            start, end = _parse_time(chunk, token)
            seen_time = True
        else:
            if seen_days:
                raise ValueError(f"rule {chunk!r}: unexpected {token!r}")
            try:
                days = _parse_days(token)
            except ValueError as exc:
                raise ValueError(f"rule {chunk!r}: {exc}") from None
            seen_days = True
    if low is None and high is None:
        raise ValueError(f"rule {chunk!r} sets neither min= nor max=")
    if low is not None and high is not None and low > high:
        raise ValueError(f"rule {chunk!r}: min={low} is above max={high}")
    return Rule(days, start, end, low, high)


def _parse_bound(chunk: str, token: str) -> tuple[str, int]:
    """``min=N`` or ``max=N``: the bound's name (lower case) and its value."""
    key, _, value = token.partition("=")
    if key.lower() not in ("min", "max"):
        raise ValueError(f"rule {chunk!r}: unknown setting {key!r} (min= or max=)")
    if not value.isdigit() or int(value) > 10_000:
        raise ValueError(f"rule {chunk!r}: {key} must be a whole number 0..10000")
    return key.lower(), int(value)


def _parse_time(chunk: str, token: str) -> tuple[int, int]:
    """``HH:MM-HH:MM``: its start and end in minutes since midnight (24:00 is 0)."""
    m = _TIME.match(token)
    assert m is not None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start > 1440 or end > 1440:
        raise ValueError(f"rule {chunk!r}: time past 24:00")
    return start, end % 1440
