"""Serving the dashboard: a small threaded WSGI server (for ``autoscaler dashboard`` and the
daemon's own ``AUTOSCALER_DASHBOARD_PORT``), and the apps an app mounts, built from its config
vars. Standard library only, besides the store's client."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from autoscaler.dashboard import DashboardApp, asgi
from autoscaler.history import HistoryStore


class _Handler(WSGIRequestHandler):
    timeout = 10  # an idle or slow client is dropped, never holds a thread for good

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 32


def serve(app: DashboardApp, host: str, port: int) -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a background thread; ``shutdown()`` stops it."""
    httpd = make_server(host, port, app, server_class=_Server, handler_class=_Handler)
    threading.Thread(target=httpd.serve_forever, name="dashboard", daemon=True).start()
    return httpd


def _token(env: Mapping[str, str]) -> str:
    token = (env.get("AUTOSCALER_DASHBOARD_TOKEN") or "").strip()
    if len(token) < 16:
        raise RuntimeError(
            "AUTOSCALER_DASHBOARD_TOKEN must be set (16 characters or more) to mount the "
            "dashboard in the app: it is the password the page asks for"
        )
    return token


def _store(env: Mapping[str, str]) -> HistoryStore:
    from autoscaler.registry import open_history_store

    store = open_history_store(env)
    if store is None:
        raise RuntimeError(
            "no history store: set REDIS_URL or DATABASE_URL as the daemon has them "
            "(AUTOSCALER_HISTORY says which)"
        )
    return store


def wsgi_app(env: Mapping[str, str] | None = None) -> DashboardApp:
    """The dashboard for a WSGI app (Flask, Django), reading the daemon's history store. Refused
    unless ``AUTOSCALER_DASHBOARD_TOKEN`` is set."""
    env = os.environ if env is None else env
    return DashboardApp(_store(env), token=_token(env))


def asgi_app(env: Mapping[str, str] | None = None) -> Callable[..., Any]:
    """The dashboard for an ASGI app (FastAPI, Starlette, Django ASGI); same rules."""
    return asgi(wsgi_app(env))
