"""The Redis lease against the real Redis (db 8): scenarios 38, 39, 41, 42 at adapter level."""

from __future__ import annotations

import pytest
import redis

from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.locks.common import LockUnavailable
from autoscaler.locks.redis import RedisLock, RedisLockConfig, build, parse, parse_ttl
from autoscaler.ports import ConfigError
from tests.helpers import REDIS_URL, TcpProxy

pytestmark = pytest.mark.integration


def make(name: str, ttl: float = 15.0, clock: FakeClock | None = None) -> RedisLock:
    config = RedisLockConfig(url=REDIS_URL, name=name, ttl=ttl)
    return RedisLock(config, monotonic=(clock or FakeClock()).monotonic)


@pytest.mark.parametrize(
    ("env", "interval", "ttl"),
    [
        ({}, 5.0, 15.0),
        ({}, 10.0, 30.0),
        ({"AUTOSCALER_LOCK_TTL": "20s"}, 5.0, 20.0),
        ({"AUTOSCALER_LOCK_TTL": "3"}, 1.0, 3.0),
    ],
)
def test_the_ttl_defaults_to_three_intervals_and_at_least_15_seconds(
    env: dict[str, str], interval: float, ttl: float
) -> None:
    assert parse_ttl(env, interval) == ttl


@pytest.mark.parametrize("raw", ["9s", "0", "soon", "-1s", "500ms", " "])
def test_a_ttl_shorter_than_two_intervals_or_unreadable_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_ttl({"AUTOSCALER_LOCK_TTL": raw}, 5.0)
    assert set(err.value.problems) == {"AUTOSCALER_LOCK_TTL"}


def test_build_reads_redis_url_and_names_the_lock_per_app() -> None:
    settings = load(
        {
            "AUTOSCALER_PLATFORM": "heroku",
            "HEROKU_APP_NAME": "shop",
            "HEROKU_API_TOKEN": "x" * 20,
            "REDIS_URL": "redis://:s3cret-pass@127.0.0.1:6379/8",
        }
    )
    lock = build(settings)
    try:
        assert lock.config.name == "autoscaler:heroku:shop"
        assert lock.config.url == "redis://:s3cret-pass@127.0.0.1:6379/8"
    finally:
        lock.close()


def test_build_without_a_redis_url_names_the_missing_variable() -> None:
    with pytest.raises(ConfigError) as err:  # by load, as check and run both see it
        build(load({"AUTOSCALER_LOCK": "redis"}))
    assert set(err.value.problems) == {"REDIS_URL"}


def test_two_contenders_get_exactly_one_lease(redis_db: redis.Redis, unique: str) -> None:
    a, b = make(unique), make(unique)
    lease_a = a.acquire()
    assert lease_a is not None and a.valid(lease_a)
    assert b.acquire() is None
    assert a.acquire() is not None  # renewal while b waits
    assert b.acquire() is None


def test_the_epoch_grows_on_each_acquisition_and_stays_on_renewal(
    redis_db: redis.Redis, unique: str
) -> None:
    a, b = make(unique), make(unique)
    first = a.acquire()
    renewed = a.acquire()
    assert first is not None and renewed is not None
    assert renewed.epoch == first.epoch
    a.release(renewed)
    second = b.acquire()
    assert second is not None and second.epoch == first.epoch + 1


def test_the_lease_is_not_trusted_past_ttl_minus_a_third(
    redis_db: redis.Redis, unique: str
) -> None:
    clock = FakeClock()
    lock = make(unique, ttl=15.0, clock=clock)
    lease = lock.acquire()
    assert lease is not None
    clock.advance(9.9)
    assert lock.valid(lease)
    clock.advance(0.2)
    assert not lock.valid(lease)  # 10.1 s > 15 - 5: too close to expiry to write
    renewed = lock.acquire()
    assert renewed is not None and lock.valid(renewed)
    assert not lock.valid(lease)  # an old lease object is never trusted again


def test_the_follower_takes_over_when_the_leader_stops_renewing(
    redis_db: redis.Redis, unique: str
) -> None:
    leader, follower = make(unique, ttl=1.0), make(unique, ttl=1.0)
    assert leader.acquire() is not None
    assert follower.acquire() is None
    redis_db.delete(f"{{{unique}}}:lease")  # the leader froze past the TTL: the key expired
    lease = follower.acquire()
    assert lease is not None
    assert leader.acquire() is None  # the woken ex-leader cannot take it back ...
    assert not leader.valid(lease)  # ... nor use the new leader's lease


def test_a_foreign_token_can_neither_renew_nor_release(redis_db: redis.Redis, unique: str) -> None:
    owner, intruder = make(unique), make(unique)
    lease = owner.acquire()
    assert lease is not None
    intruder.release(lease)  # not its lease: a no-op
    assert redis_db.get(f"{{{unique}}}:lease") is not None
    # even with the lease object, the release script compares the stored token
    intruder._held = lease
    intruder.release(lease)
    assert redis_db.get(f"{{{unique}}}:lease") is not None
    assert intruder.acquire() is None
    assert owner.valid(lease)


def test_release_frees_the_lock_for_the_next_daemon(redis_db: redis.Redis, unique: str) -> None:
    a, b = make(unique), make(unique)
    lease = a.acquire()
    assert lease is not None
    a.release(lease)
    assert not a.valid(lease)
    assert b.acquire() is not None


def test_an_unreachable_redis_drops_the_lease_and_raises(
    redis_db: redis.Redis, unique: str
) -> None:
    proxy = TcpProxy(6379)
    config = RedisLockConfig(url=f"redis://127.0.0.1:{proxy.port}/8", name=unique, ttl=3.0)
    lock = RedisLock(config)
    try:
        lease = lock.acquire()
        assert lease is not None and lock.valid(lease)
        proxy.cut()
        with pytest.raises(LockUnavailable, match=unique):
            lock.acquire()
        assert not lock.valid(lease)  # self-fenced at once
        proxy.heal()
        again = lock.acquire()  # the key still holds our token: same epoch, no handover
        assert again is not None and again.epoch == lease.epoch
    finally:
        lock.close()
        proxy.close()


def test_check_reports_the_state_without_taking_the_lock(
    redis_db: redis.Redis, unique: str
) -> None:
    a, b = make(unique), make(unique)
    assert "free" in b.check()
    assert a.acquire() is not None
    assert "held" in b.check()
    assert b.acquire() is None


@pytest.mark.parametrize(
    ("env", "name"),
    [
        (
            {"AUTOSCALER_PLATFORM": "heroku", "HEROKU_APP_NAME": "shop", "HEROKU_API_TOKEN": "t"},
            "autoscaler:heroku:shop",
        ),
        (
            {"AUTOSCALER_PLATFORM": "fly", "FLY_APP_NAME": "shop", "FLY_API_TOKEN": "t"},
            "autoscaler:fly:shop",
        ),
        (
            {
                "AUTOSCALER_PLATFORM": "render",
                "RENDER_API_KEY": "k",
                "AUTOSCALER_WEB_RENDER_SERVICE_ID": "srv-abc123",
            },
            "autoscaler:render:srv-abc123",
        ),
        (
            {
                "AUTOSCALER_PLATFORM": "railway",
                "RAILWAY_API_TOKEN": "t",
                "RAILWAY_ENVIRONMENT_ID": "e",
                "AUTOSCALER_WEB_RAILWAY_SERVICE_ID": "s",
            },
            "autoscaler:railway:e",
        ),
        ({"AUTOSCALER_PLATFORM": "sim"}, "autoscaler:sim"),
        ({"AUTOSCALER_LOCK_NAME": " shop-eu "}, "shop-eu"),
    ],
)
def test_the_lock_name_is_one_per_app_unless_set(env: dict[str, str], name: str) -> None:
    settings = load({**env, "REDIS_URL": REDIS_URL})
    assert parse(settings).name == name
