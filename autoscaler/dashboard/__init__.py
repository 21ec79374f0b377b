"""The read-only dashboard: one page of charts over the history store, as WSGI and ASGI apps.

``DashboardApp(store, token=...)`` is a WSGI app; ``asgi(DashboardApp(...))`` the same as an ASGI
app. Both serve ``/`` (the page), ``/api/processes``, ``/api/history?process=P&range=6h`` and
``/static/...`` (the vendored chart library), under whatever path the app mounts them at. There
is no write action. With a token, every request needs it, as a bearer token
(``Authorization: Bearer <token>``) or as the password of HTTP basic auth (any user name), so a
browser asks for it once; a missing or wrong token gets 401 and no data.

Only the standard library is imported here (the store is passed in), so mounting the dashboard in
an app adds nothing to its imports but the store's client.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from autoscaler.history import HistoryStore, Mean, Minute

#: the ranges the page offers, in seconds
RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "14d": 14 * 86400}
#: at most this many points per series: longer ranges are summarised into wider buckets
MAX_POINTS = 1500

_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain; charset=utf-8"}

Response = tuple[int, list[tuple[str, str]], bytes]


def _json(status: int, data: Any) -> Response:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    return status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body


def _text(status: int, text: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    headers = [("Content-Type", "text/plain; charset=utf-8"), *extra]
    return status, headers, text.encode()


class _Bucket:
    """One bucket's sums and counts (for the means) and its worst and lowest values."""

    __slots__ = ("p50", "p95", "q", "rate", "ready", "t", "top", "use")

    def __init__(self, t: int) -> None:
        self.t = t
        self.p50, self.rate, self.use = Mean(), Mean(), Mean()
        self.p95: float | None = None
        self.top: float | None = None
        self.q: int | None = None
        self.ready: int | None = None

    def add(self, m: Minute) -> None:
        self.p50.add(m.p50)
        self.rate.add(m.rate)
        self.use.add(m.in_use)
        if m.p95 is not None and (self.p95 is None or m.p95 > self.p95):
            self.p95 = m.p95
        if m.max is not None and (self.top is None or m.max > self.top):
            self.top = m.max
        if m.quantity is not None and (self.q is None or m.quantity > self.q):
            self.q = m.quantity
        if m.ready is not None and (self.ready is None or m.ready < self.ready):
            self.ready = m.ready

    def values(self) -> tuple[Any, ...]:
        return (  # means to 3 decimals, as stored: the page's JSON stays small
            self.t,
            _round3(self.p50.value()),
            self.p95,
            self.top,
            _round3(self.rate.value()),
            _round3(self.use.value()),
            self.q,
            self.ready,
        )


def _round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_COLUMNS = ("t", "p50", "p95", "max", "rate", "in_use", "quantity", "ready")


def bucket_minutes(rows: list[Minute], since: float, width: int) -> dict[str, list[Any]]:
    """Columns of the minutes in ``width``-second buckets from ``since``: the worst p95 and max,
    the mean p50, rate and in use, the highest quantity and the lowest ready count of each."""
    cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
    out = [cols[k] for k in _COLUMNS]
    bucket: _Bucket | None = None
    for m in rows:
        t = int(since + ((m.t - since) // width) * width)
        if bucket is None or bucket.t != t:
            if bucket is not None:
                for column, value in zip(out, bucket.values(), strict=True):
                    column.append(value)
            bucket = _Bucket(t)
        bucket.add(m)
    if bucket is not None:
        for column, value in zip(out, bucket.values(), strict=True):
            column.append(value)
    return cols


def _learned(raw: str | None) -> dict[str, Any]:
    """What the policy has learned of a process, as the daemon last wrote it (``{}``: nothing
    yet, or a value this version cannot read)."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class DashboardApp:
    """The dashboard as a WSGI app. ``clock`` gives "now" when the store has no daemon clock
    (the daemon writes its own clock to the store, so the ``sim`` platform's accelerated
    history is shown at its own time)."""

    def __init__(
        self,
        store: HistoryStore,
        *,
        token: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.token = token
        self.clock = clock

    # ---- the one request handler both servers use ------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> Response:
        if not self._authorised(headers):
            return _text(
                401,
                "a token is needed: AUTOSCALER_DASHBOARD_TOKEN (bearer, or basic auth password)",
                [("WWW-Authenticate", 'Basic realm="autoscaler", charset="UTF-8"')],
            )
        if method not in ("GET", "HEAD"):
            return _text(405, "the dashboard is read-only", [("Allow", "GET, HEAD")])
        path = "/" + path.strip("/")
        if path == "/":
            page = resources.files(__package__).joinpath("page.html").read_bytes()
            return 200, [("Content-Type", "text/html; charset=utf-8")], page
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            if path == "/api/processes":
                return _json(200, self._processes())
            if path == "/api/history":
                return self._history(params)
        except Exception as exc:  # the store is down: say so, never a traceback
            return _text(503, f"the history store cannot be read: {type(exc).__name__}")
        return _text(404, "not found")

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        if self.token is None:
            return True
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        given = ""
        if scheme.lower() == "bearer":
            given = value.strip()
        elif scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip()).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def _static(self, name: str) -> Response:
        if "/" in name or name.startswith(".") or not name:
            return _text(404, "not found")
        item = resources.files(__package__).joinpath("static", name)
        if not item.is_file():
            return _text(404, "not found")
        ctype = next((t for ext, t in _TYPES.items() if name.endswith(ext)), "text/plain")
        return 200, [("Content-Type", ctype), ("Cache-Control", "max-age=86400")], item.read_bytes()

    def _now(self) -> float:
        raw = self.store.get_meta("clock")
        return float(raw) if raw else self.clock()

    def _processes(self) -> dict[str, Any]:
        settings = self.store.get_meta("settings")
        return {
            "processes": self.store.processes(),
            "now": self._now(),
            "settings": json.loads(settings) if settings else None,
            "ranges": list(RANGES),
        }

    def _history(self, params: Mapping[str, str]) -> Response:
        process = params.get("process", "")
        span = RANGES.get(params.get("range", "6h"))
        if not process or span is None:
            return _text(400, f"process and range ({', '.join(RANGES)}) are needed")
        width = max(60, math.ceil(span / MAX_POINTS / 60) * 60)
        until = self._now() + 60
        since = (until - span) // width * width
        rows, events = self.store.read(process, since, until)
        return _json(
            200,
            {
                "process": process,
                "since": since,
                "until": until,
                "step": width,
                "columns": bucket_minutes(rows, since, width),
                "events": [{k: v for k, v in asdict(e).items() if v is not None} for e in events],
                "status": self.store.get_meta(f"status:{process}"),
                "learned": _learned(self.store.get_meta(f"learned:{process}")),
            },
        )

    # ---- WSGI ---------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        headers = {
            k[5:].replace("_", "-").lower(): str(v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        }
        status, out, body = self.handle(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/"),
            environ.get("QUERY_STRING", ""),
            headers,
        )
        start_response(f"{status} {_REASONS.get(status, '')}", out)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def asgi(app: DashboardApp) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The same dashboard as an ASGI app (FastAPI/Starlette ``app.mount("/autoscaler", ...)``).
    The store is read in a worker thread so the event loop is never blocked."""

    async def dashboard(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        root = scope.get("root_path", "")
        path = scope.get("path", "/")
        if root and path.startswith(root):
            path = path[len(root) :]
        status, out, body = await asyncio.to_thread(
            app.handle,
            scope.get("method", "GET"),
            path,
            scope.get("query_string", b"").decode("latin-1"),
            headers,
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in out],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return dashboard
