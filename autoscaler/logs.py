"""structlog set-up: logfmt (default), JSON or console, with secrets redacted from every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

from autoscaler.redact import redact


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


def configure(fmt: str = "logfmt", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog for the daemon and the CLI. Safe to call more than once."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.LogfmtRenderer(
            key_order=["event", "process", "action", "current", "desired", "signal_ms", "reason"],
            drop_missing=True,
            bool_as_flag=False,
        )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or cast(TextIO, _Stderr())),
        cache_logger_on_first_use=False,
    )


def get(name: str = "autoscaler") -> Any:
    return structlog.get_logger(name)
