"""ASGI middleware that measures request queue time (FastAPI, Starlette, Django ASGI).

    app = QueueTimeMiddleware(app)

The sample is taken when the app is called for an ``http`` scope, i.e. as soon as the server has
parsed the headers; the body arrives later through ``receive``, so upload time is not part of
the sample. Requests with a body above ``AUTOSCALER_MAX_REQUEST_BYTES`` are skipped anyway. The
``lifespan`` startup starts the process's flusher, so an idle worker heartbeats from boot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from autoscaler.web.wsgi import Wrapper, log

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class QueueTimeMiddleware(Wrapper[ASGIApp]):
    """Wrap an ASGI app; never raises into it and never does network I/O per request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rec = self.recorder
        if rec is None or scope["type"] != "http":
            if rec is not None and scope["type"] == "lifespan":
                rec.ensure_started()
            await self.app(scope, receive, send)
            return
        try:
            start = queue = length = None
            for name, value in scope["headers"]:
                if name == b"x-request-start":
                    start = value
                elif name == b"x-queue-start":
                    queue = value
                elif name == b"content-length":
                    length = value
            rec.begin(id(scope), start or queue, length)
        except Exception:  # pragma: no cover - malformed scope from a broken server
            log.debug("queue time: sample skipped", exc_info=True)
        try:
            await self.app(scope, receive, send)
        finally:
            rec.end(id(scope))
