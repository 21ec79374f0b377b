"""TLS Redis as the platforms provide it: a ``rediss://`` server with a self-signed certificate.

The test makes its own certificate (``openssl``) and starts a real ``redis-server`` that speaks
only TLS on a free loopback port. ``AUTOSCALER_REDIS_SSL_CERT_REQS=none`` makes the middleware,
the daemon's sources and the lock connect without editing ``REDIS_URL``; ``AUTOSCALER_REDIS_URL``
points them elsewhere than a ``REDIS_URL`` the platform owns."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from autoscaler import cli, redisconn
from autoscaler.config import load
from autoscaler.locks import redis as redis_lock
from autoscaler.ports import ConfigError
from autoscaler.web import publisher, wsgi

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.fail("redis-server and openssl are required for the TLS tests")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=redis.internal"),
            *("-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")),
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            *("redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(d / "cert.pem"), "--tls-key-file", str(d / "key.pem")),
            *("--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(d)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"rediss://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redisconn.client(url, ssl_cert_reqs="none").ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def db(tls_url: str) -> Iterator[redis.Redis]:
    client = redisconn.client(tls_url, ssl_cert_reqs="none")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_the_self_signed_certificate_is_refused_by_default_and_accepted_with_none(
    tls_url: str,
) -> None:
    for setting in (None, "required", "optional"):  # optional = required for a TLS client
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            redisconn.client(tls_url, ssl_cert_reqs=setting).ping()
    assert redisconn.client(tls_url, ssl_cert_reqs="none").ping() is True


def test_the_setting_does_not_touch_plain_redis_urls() -> None:
    client = redisconn.client("redis://127.0.0.1:6379/11", ssl_cert_reqs="none")
    assert client.ping() is True
    client.close()


def test_the_middleware_publishes_over_tls_with_the_setting(tls_url: str, db: redis.Redis) -> None:
    env = {"REDIS_URL": tls_url, "AUTOSCALER_REDIS_SSL_CERT_REQS": "none", "DYNO": "web.1"}
    mw = wsgi.QueueTimeMiddleware(lambda environ, start: [b"ok"], env=env)
    assert mw.recorder is not None
    stamp = f"t={int((time.time() - 0.1) * 1000)}"
    assert list(mw({"HTTP_X_REQUEST_START": stamp}, lambda *a: None)) == [b"ok"]
    mw.recorder.stop(timeout=5.0)
    assert (mw.recorder.flushes >= 1, mw.recorder.failures) == (True, 0)
    assert any(b":web:" in key for key in db.keys("autoscaler:*"))


def test_the_middleware_prefers_autoscaler_redis_url_and_warns_on_a_bad_setting() -> None:
    config = publisher.publisher_config(
        {
            "REDIS_URL": "redis://platform-owned:6379",
            "AUTOSCALER_REDIS_URL": "rediss://elsewhere:6380",
            "AUTOSCALER_REDIS_SSL_CERT_REQS": "sometimes",
        }
    )
    assert config.redis_url == "rediss://elsewhere:6380"
    assert config.ssl_cert_reqs is None
    assert any("AUTOSCALER_REDIS_SSL_CERT_REQS" in w for w in config.warnings)


def _daemon_env(tls_url: str, **extra: str) -> dict[str, str]:
    return {
        "AUTOSCALER_PLATFORM": "heroku",
        "AUTOSCALER_PROCESSES": "web,worker",
        "AUTOSCALER_WORKER_SOURCE": "rq",
        "HEROKU_API_TOKEN": "x" * 20,
        "HEROKU_APP_NAME": "shop",
        # the platform's REDIS_URL is left as it is; the daemon is pointed at the TLS server
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "AUTOSCALER_REDIS_URL": tls_url,
        "AUTOSCALER_REDIS_SSL_CERT_REQS": "NONE",
        **extra,
    }


def test_sample_reads_web_and_worker_over_tls(
    tls_url: str,
    db: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    env = {"REDIS_URL": tls_url, "AUTOSCALER_REDIS_SSL_CERT_REQS": "none", "DYNO": "web.1"}
    mw = wsgi.QueueTimeMiddleware(lambda environ, start: [b"ok"], env=env)
    assert mw.recorder is not None
    list(mw({"HTTP_X_REQUEST_START": f"t={int((time.time() - 0.3) * 1000)}"}, lambda *a: None))
    mw.recorder.stop(timeout=5.0)
    db.rpush("rq:queue:default", "job-1")
    db.sadd("rq:queues", "rq:queue:default")
    db.hset("rq:job:job-1", mapping={"enqueued_at": _rq_time(time.time() - 2.0)})

    monkeypatch.chdir(tmp_path)
    for var in [k for k in os.environ if k.startswith(("AUTOSCALER_", "REDIS_"))]:
        monkeypatch.delenv(var)
    for key, value in _daemon_env(tls_url).items():
        monkeypatch.setenv(key, value)
    code = cli.main(["sample", "--json"])
    out: dict[str, Any] = json.loads(capsys.readouterr().out)["processes"]
    assert code == 0, out
    assert (out["web"]["ok"], out["web"]["samples"]) == (True, 1)
    assert 250 <= out["web"]["value_ms"] <= 5_000
    assert out["worker"]["ok"] is True
    assert 1_500 <= out["worker"]["value_ms"] <= 60_000


def _rq_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def test_without_the_setting_sample_fails_loudly_not_zero(
    tls_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in [k for k in os.environ if k.startswith(("AUTOSCALER_", "REDIS_"))]:
        monkeypatch.delenv(var)
    for key, value in _daemon_env(tls_url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AUTOSCALER_REDIS_SSL_CERT_REQS")
    code = cli.main(["sample", "--json"])
    out = json.loads(capsys.readouterr().out)["processes"]
    assert code == 3
    for name in ("web", "worker"):
        assert (out[name]["ok"], out[name]["value_ms"]) == (False, None)
        assert "certificate verify failed" in out[name]["error"]


def test_the_lock_is_taken_over_tls(tls_url: str, db: redis.Redis) -> None:
    settings = load(_daemon_env(tls_url, AUTOSCALER_LOCK="redis"))
    assert settings.glob.redis_url == tls_url
    lock = redis_lock.build(settings)
    try:
        held = lock.acquire()
        assert held is not None
        assert db.exists(lock.config.key) == 1
    finally:
        lock.close()


def test_a_bad_setting_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load(_daemon_env("rediss://127.0.0.1:6380/0", AUTOSCALER_REDIS_SSL_CERT_REQS="maybe"))
    assert set(err.value.problems) == {"AUTOSCALER_REDIS_SSL_CERT_REQS"}
