"""Every Redis job source fails, never reads 0, when Redis cannot be reached or read, and is
built from config vars with clear errors."""

from __future__ import annotations

import time

import pytest
import redis

from autoscaler.ports import ConfigError, SourceError
from tests.sources.redisjobs import REDIS_DB, make_source

pytestmark = pytest.mark.integration
BACKENDS = ["rq", "celery", "dramatiq", "arq", "sidekiq"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("queues", ["default", None])
def test_a_refused_connection_is_a_failure_not_zero(
    backend: str, queues: str | None, closed_url: str
) -> None:
    source = make_source(backend, queues=queues, url=closed_url)
    try:
        with pytest.raises(SourceError, match=f"{backend}: .*cannot connect to Redis"):
            source.sample(time.time())
        with pytest.raises(SourceError, match="cannot connect to Redis"):
            source.check()
    finally:
        source.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_redis_that_does_not_answer_times_out_as_a_failure(backend: str, silent_url: str) -> None:
    source = make_source(backend, queues="default", url=silent_url, redis_timeout="200ms")
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=f"{backend}: cannot read queue 'default'.*timed out"):
            source.sample(time.time())
    finally:
        source.close()
    assert time.monotonic() - started < 5  # bounded by the socket timeout, not hanging


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_error_never_shows_the_redis_password(backend: str, closed_url: str) -> None:
    url = closed_url.replace("redis://", "redis://:s3cr3t-pass@")
    source = make_source(backend, queues="default", url=url)
    with pytest.raises(SourceError) as caught:
        source.sample(time.time())
    assert "s3cr3t-pass" not in str(caught.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_describes_what_it_reads(backend: str, db: redis.Redis) -> None:
    source = make_source(backend, queues="default,mail")
    try:
        expected = f"{backend} on Redis 127.0.0.1:6379/{REDIS_DB}: configured default, mail"
        assert source.check() == expected
    finally:
        source.close()


@pytest.mark.parametrize(
    ("extra", "var"),
    [
        ({"queue_discovery_limit": "0"}, "AUTOSCALER_WORKER_QUEUE_DISCOVERY_LIMIT"),
        ({"queue_discovery_limit": "many"}, "AUTOSCALER_WORKER_QUEUE_DISCOVERY_LIMIT"),
        ({"redis_timeout": "forever"}, "AUTOSCALER_WORKER_REDIS_TIMEOUT"),
        ({"redis_timeout": "10ms"}, "AUTOSCALER_WORKER_REDIS_TIMEOUT"),
        ({"key_prefix": " "}, "AUTOSCALER_WORKER_KEY_PREFIX"),
    ],
)
def test_bad_adapter_variables_are_named(extra: dict[str, str], var: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_source("rq", **extra)
    assert var in caught.value.problems


def test_redis_url_is_required() -> None:
    with pytest.raises(ConfigError) as caught:
        make_source("sidekiq", url=None)
    assert "REDIS_URL" in caught.value.problems


def test_a_redis_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        make_source("rq", url="postgres://127.0.0.1/4")
    assert "REDIS_URL" in caught.value.problems
