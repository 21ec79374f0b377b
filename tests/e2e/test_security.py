"""Security defaults: what listens where, who the image runs as, secrets in lock errors."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.locks.common import LockUnavailable
from autoscaler.locks.postgres import PostgresLock
from autoscaler.locks.postgres import build as build_pg_lock
from autoscaler.locks.redis import build as build_redis_lock
from autoscaler.metrics import HealthState, Metrics, serve
from autoscaler.redact import redact

ROOT = Path(__file__).resolve().parents[2]
SECRET = "pw-9f8e7d6c5b4a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_and_healthz_listen_on_loopback_unless_told_otherwise() -> None:
    port = free_port()
    settings = load({"AUTOSCALER_METRICS_PORT": str(port)})
    assert settings.glob.metrics_host == "127.0.0.1"
    server = serve(Metrics(), HealthState(15.0, FakeClock()), settings.glob.metrics_host, port)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_the_docker_image_runs_as_a_non_root_user() -> None:
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users and users[-1] not in ("root", "0", "0:0")


def test_a_lock_url_password_never_reaches_an_error_message() -> None:
    lock = build_redis_lock(load({"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:1/8"}))
    try:
        with pytest.raises(LockUnavailable) as err:
            lock.acquire()
    finally:
        lock.close()
    assert SECRET not in str(err.value)
    assert SECRET not in redact(f"postgresql://u:{SECRET}@db/app and {SECRET}")


@pytest.mark.integration
def test_a_postgres_lock_error_names_the_lock_not_the_password() -> None:
    lock = build_pg_lock(
        load({"AUTOSCALER_LOCK_URL": f"postgresql://nobody:{SECRET}@127.0.0.1:1/test"})
    )
    assert isinstance(lock, PostgresLock)
    with pytest.raises(LockUnavailable) as err:
        lock.acquire()
    assert "postgres lock" in str(err.value) and SECRET not in str(err.value)
