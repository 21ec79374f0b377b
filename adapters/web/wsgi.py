"""WSGI middleware that measures request queue time (Flask, Django's WSGI handler, any WSGI app).

    app = QueueTimeMiddleware(app)

It reads ``X-Request-Start`` (or ``X-Queue-Start``) when the app is entered, before the body is
read: WSGI servers call the app once the headers are parsed and stream the body afterwards, so
upload time is not part of the sample. Requests with a body above
``AUTOSCALER_MAX_REQUEST_BYTES`` are skipped anyway, in case a proxy in front buffered the body
after stamping the header. A request counts as in flight until the app returns its response
iterable. Without ``REDIS_URL`` the middleware passes requests straight through.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from autoscaler.web.publisher import PublisherConfig, Recorder, publisher_config

log = logging.getLogger("autoscaler.web")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


A = TypeVar("A")


class Wrapper(Generic[A]):
    """What the WSGI and the ASGI middleware hold: the wrapped app and the recorder its config
    vars ask for (``None``, with the reason logged, when queue time is not measured)."""

    def __init__(
        self,
        app: A,
        *,
        redis_url: str | None = None,
        process: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        config = publisher_config(
            os.environ if env is None else env, redis_url=redis_url, process=process
        )
        self.recorder = make_recorder(config)


def make_recorder(config: PublisherConfig) -> Recorder | None:
    for warning in config.warnings:
        log.warning("queue time: %s", warning)
    if not config.redis_url:
        log.warning("queue time: REDIS_URL is not set; request queue time is not measured")
        return None
    return Recorder(config)


class QueueTimeMiddleware(Wrapper[WSGIApp]):
    """Wrap a WSGI app; never raises into it and never does network I/O per request."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        rec = self.recorder
        if rec is None:
            return self.app(environ, start_response)
        try:
            rec.begin(
                id(environ),
                environ.get("HTTP_X_REQUEST_START") or environ.get("HTTP_X_QUEUE_START"),
                environ.get("CONTENT_LENGTH"),
            )
        except Exception:  # pragma: no cover - begin() is written not to raise; belt and braces
            log.debug("queue time: sample skipped", exc_info=True)
        try:
            return self.app(environ, start_response)
        finally:
            rec.end(id(environ))
