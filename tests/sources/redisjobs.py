"""The Redis job sources' test database and sources built from config vars, as the daemon builds
them (their fixtures are in ``conftest.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from autoscaler import config
from autoscaler.ports import Source
from autoscaler.registry import build_source

#: this area's Redis databases are 4 and 5; the default run uses 4
REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "4"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
ROOT = Path(__file__).resolve().parents[2]


def make_source(
    backend: str, queues: str | None = None, url: str | None = REDIS_URL, **extra: str
) -> Source:
    """A source built the way the daemon builds it: from config vars, through the registry."""
    env = {
        "AUTOSCALER_PROCESSES": "worker",
        "AUTOSCALER_WORKER_SOURCE": backend,
        **{f"AUTOSCALER_WORKER_{key.upper()}": value for key, value in extra.items()},
    }
    if queues is not None:
        env["AUTOSCALER_WORKER_QUEUES"] = queues
    if url is not None:
        env["REDIS_URL"] = url
    settings = config.load(env)
    return build_source(settings, settings.processes["worker"])
