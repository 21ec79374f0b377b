"""structlog set-up: console (in a terminal), logfmt or JSON, with secrets redacted from every
line; and the ``Logbook`` that keeps the daemon's info log to what a person reads.

At info the daemon logs one line per change (``decision`` with ``action=up``/``down``), one per
new problem (and one when it clears), and one ``summary`` per process every ten minutes; holds
and repeats of the same problem are at debug. Third-party loggers that use the standard library
(APScheduler, httpx) go through the same renderer (structlog's ``ProcessorFormatter``); below
debug they only show warnings and errors.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

import structlog

from autoscaler.model import Action, Decision, Status
from autoscaler.redact import redact

_HANDLER_MARK = "_autoscaler_handler"


def _redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
        elif isinstance(value, BaseException):
            event[key] = redact(str(value))
    return event


class _Stderr:
    """Whatever ``sys.stderr`` is at the moment of writing (it may be replaced after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def resolve_format(fmt: str, stream: Any) -> str:
    """``auto`` is ``console`` in a terminal and ``logfmt`` otherwise (a file, a pipe, a
    platform's log drain)."""
    if fmt == "auto":
        return "console" if _isatty(stream) else "logfmt"
    return fmt


def _renderer(fmt: str, colors: bool) -> Any:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    if fmt == "console":
        # fields in the order they are logged (process, action, current, desired, ...)
        return structlog.dev.ConsoleRenderer(colors=colors, sort_keys=False)
    return structlog.processors.LogfmtRenderer(
        key_order=["event", "process", "action", "current", "desired", "signal_ms", "reason"],
        drop_missing=True,
        bool_as_flag=False,
    )


class _Repeats(logging.Filter):
    """Lets a library's message through once, then the same message (its numbers aside) at most
    once every ``every`` seconds: APScheduler warns on every skipped run of an overrunning tick.
    """

    def __init__(self, every: float = 600.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return True
        key = (record.name, _shape(record.getMessage()))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        self._last[key] = now
        return True


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's root logger for the daemon and the CLI.
    Safe to call more than once (the last call wins)."""
    out: Any = stream or cast(TextIO, _Stderr())
    fmt = resolve_format(fmt, out)
    renderer = _renderer(fmt, colors=_isatty(out))
    number = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.processors.add_log_level,
        # the console renderer puts ``timestamp`` first, the others print ``ts`` as a field
        structlog.processors.TimeStamper(
            fmt="iso", utc=True, key="timestamp" if fmt == "console" else "ts"
        ),
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_Repeats())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    # libraries log every call or job run at info (APScheduler each tick, httpx each request):
    # below debug only their warnings and errors are shown
    root.setLevel(number if number <= logging.DEBUG else max(number, logging.WARNING))


def get(name: str = "autoscaler") -> Any:
    return structlog.get_logger(name)


# ---- what the daemon logs at info ---------------------------------------------------------


@dataclass
class _Span:
    """One process's ticks since its last summary line."""

    start: float
    ticks: int = 0
    low: float | None = None
    high: float | None = None
    quantities: set[int] = field(default_factory=set)
    changes: int = 0
    untrusted: int = 0
    unread: int = 0


def _shape(text: str) -> str:
    """A problem's text with its numbers blanked: the same problem counting down is a repeat."""
    return re.sub(r"\d+(\.\d+)?", "#", text)


class Logbook:
    """Keeps the info log readable: a problem is logged when it starts or changes and when it
    clears (repeats go to debug), and each process gets a ``summary`` line every ``every``
    seconds of the daemon's clock: the range of its signal, its quantity, its changes."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._problems: dict[str, str] = {}
        self._spans: dict[str, _Span] = {}

    def problem(self, log: Any, kind: str, text: str | None, level: str, **fields: Any) -> None:
        before = self._problems.get(kind)
        if text is None:
            if before is not None:
                log.info("recovered", what=kind)
                del self._problems[kind]
            return
        shape = _shape(text)
        if shape == before:
            log.debug(kind, error=text, repeated=True, **fields)
            return
        self._problems[kind] = shape
        getattr(log, level)(kind, error=text, **fields)

    def summarise(
        self, log: Any, process: str, d: Decision | None, outcome: str | None, mono: float
    ) -> None:
        span = self._spans.get(process)
        if span is None:
            span = self._spans[process] = _Span(mono)
        span.ticks += 1
        if d is None:
            span.unread += 1
        else:
            span.quantities.add(d.current)
            if d.signal_ms is not None and d.status in (Status.OK, Status.SPARSE):
                span.low = d.signal_ms if span.low is None else min(span.low, d.signal_ms)
                span.high = d.signal_ms if span.high is None else max(span.high, d.signal_ms)
            else:
                span.untrusted += 1
            if d.action is not Action.HOLD and d.desired != d.current and outcome == "written":
                span.changes += 1
                span.quantities.add(d.desired)
        if mono - span.start < self.every:
            return
        fields: dict[str, Any] = {
            "process": process,
            "minutes": round((mono - span.start) / 60.0),
            "quantity": _range(span.quantities),
            "signal_ms": "none"
            if span.low is None or span.high is None
            else f"{span.low:.0f}..{span.high:.0f}",
            "changes": span.changes,
        }
        if span.untrusted:
            fields["untrusted_ticks"] = span.untrusted
        if span.unread:
            fields["unread_ticks"] = span.unread
        log.info("summary", **fields)
        self._spans[process] = _Span(mono)


def _range(values: set[int]) -> str:
    if not values:
        return "unknown"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}..{high}"
