"""Tiny real apps wrapped in the middleware, served by real servers in the integration tests.

Configured by the environment the test gives the server (REDIS_URL, AUTOSCALER_PROCESS,
AUTOSCALER_FLUSH_INTERVAL), exactly as a user's app would be.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI
from flask import Flask

from autoscaler.web import asgi, wsgi

flask_app = Flask(__name__)
flask_app.wsgi_app = wsgi.QueueTimeMiddleware(flask_app.wsgi_app)  # type: ignore[method-assign]


@flask_app.route("/", methods=["GET", "POST"])
def index() -> dict[str, bool]:
    return {"ok": True}


@flask_app.route("/slow")
def slow() -> dict[str, bool]:
    time.sleep(0.2)
    return {"ok": True}


_fastapi = FastAPI()


@_fastapi.api_route("/", methods=["GET", "POST"])
def root() -> dict[str, bool]:
    return {"ok": True}


@_fastapi.get("/slow")
async def slow_async() -> dict[str, bool]:
    await asyncio.sleep(0.2)
    return {"ok": True}


fastapi_app = asgi.QueueTimeMiddleware(_fastapi)
