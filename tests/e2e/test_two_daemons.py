"""Two real ``autoscaler run`` processes, one fake platform, the real Redis (then PostgreSQL).

Exactly one writes; ``kill -9`` the writer and the other takes over within the lease TTL (plus
one interval to notice); no write ever comes from a process that does not hold the current lease
(each write in the fake platform's journal carries the lock backend's epoch at that moment);
SIGTERM makes the new leader release the lock and exit 0. Scenarios 37, 38, 39, 40, 44.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.helpers import DATABASE_URL, REDIS_URL

from .fake_platform import FakeFormationApi, Write

pytestmark = pytest.mark.integration

INTERVAL, TTL = 1.0, 3.0


class Daemon:
    def __init__(self, name: str, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.token = env["HEROKU_API_TOKEN"]
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoscaler", "run"],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=logdir,  # no stray .env file
        )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def led_since(self) -> float | None:
        """Seconds since the epoch (log timestamps are ISO) of the first tick it led, if any."""
        for e in self.events():
            if e.get("event") == "decision" and e.get("leader") is True:
                return _iso(e["ts"])
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def _iso(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def daemon_env(api: FakeFormationApi, token: str, **lock: str) -> dict[str, str]:
    return {
        "AUTOSCALER_PLATFORM": "heroku",
        "HEROKU_API_TOKEN": token,
        "HEROKU_APP_NAME": "my-app",
        "HEROKU_API_URL": api.url,
        "AUTOSCALER_PROCESSES": "worker",
        "AUTOSCALER_WORKER_SOURCE": "http",
        "AUTOSCALER_WORKER_URL": api.url + "/signal",
        "AUTOSCALER_WORKER_MIN": "1",
        "AUTOSCALER_WORKER_MAX": "4",
        "AUTOSCALER_WORKER_UP_STEP": "1",
        "AUTOSCALER_WORKER_UP_COOLDOWN": "0s",
        "AUTOSCALER_WORKER_DOWN_DELAY": "1s",
        "AUTOSCALER_INTERVAL": f"{INTERVAL:g}s",
        "AUTOSCALER_LOCK_TTL": f"{TTL:g}s",
        "AUTOSCALER_LOG_FORMAT": "json",
        "AUTOSCALER_LOG_LEVEL": "debug",  # holds too: a follower's decisions are all holds
        **lock,
    }


def check_journal(writes: list[Write], daemons: list[Daemon]) -> dict[str, set[int]]:
    """Every write was sent by the holder of the lease current at that moment; returns the epochs
    each writer wrote under.

    An epoch belongs to one writer. A writer may write under more than one epoch: a leader whose
    own lease lapsed (a tick late by more than the margin on a loaded machine) takes it again, as
    anyone may, under a new epoch."""
    epochs_of: dict[str, set[int]] = {}
    writer_of: dict[int, str] = {}
    for w in writes:
        assert w.held, f"a write arrived while no lease was held: {w}"
        assert w.epoch is not None
        assert writer_of.setdefault(w.epoch, w.token) == w.token, (
            f"two writers shared an epoch: {w}"
        )
        epochs_of.setdefault(w.token, set()).add(w.epoch)
    # the daemons' own logs tag each write with an epoch the journal saw it write under
    for d in daemons:
        logged = {
            e["epoch"]
            for e in d.events()
            if e.get("event") == "decision" and e.get("outcome") == "written"
        }
        assert logged <= epochs_of.get(d.token, set()), (d.name, logged, epochs_of)
    return epochs_of


@pytest.fixture(params=["redis", "postgres"])
def lock(
    request: pytest.FixtureRequest, unique: str
) -> Iterator[tuple[FakeFormationApi, dict[str, str]]]:
    """The fake platform, whose journal tags each write with the lock backend's epoch and
    whether a lease is held at that moment, and the daemons' lock variables: Redis, then
    PostgreSQL."""
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL)

        def redis_epoch() -> tuple[int | None, bool]:
            epoch = client.get(f"{{{unique}}}:epoch")
            held = bool(client.exists(f"{{{unique}}}:lease"))
            return (None if epoch is None else int(epoch)), held

        api = FakeFormationApi(redis_epoch)
        yield (
            api,
            {"AUTOSCALER_LOCK": "redis", "REDIS_URL": REDIS_URL, "AUTOSCALER_LOCK_NAME": unique},
        )
        api.close()
        client.delete(f"{{{unique}}}:epoch", f"{{{unique}}}:lease")
        client.close()
        return
    request.getfixturevalue("pg_schema")  # dropped after the test
    conn = psycopg.connect(DATABASE_URL, autocommit=True)

    def pg_epoch() -> tuple[int | None, bool]:
        try:
            row = conn.execute(
                f"SELECT epoch, holder IS NOT NULL AND expires_at > now() FROM {unique}.leases"
                " WHERE name = %s",
                (unique,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None, False
        except psycopg.errors.UndefinedColumn:  # the advisory-lock layout (to run this test
            # against the code before the lease): the epoch only
            row = conn.execute(
                f"SELECT epoch, true FROM {unique}.leases WHERE name = %s", (unique,)
            ).fetchone()
        return (None, False) if row is None else (int(row[0]), bool(row[1]))

    api = FakeFormationApi(pg_epoch)
    yield (
        api,
        {
            "AUTOSCALER_LOCK": "postgres",
            "DATABASE_URL": DATABASE_URL,
            "AUTOSCALER_LOCK_NAME": unique,
            "AUTOSCALER_LOCK_SCHEMA": unique,
        },
    )
    api.close()
    conn.close()


@contextmanager
def two_daemons(
    api: FakeFormationApi, lock_env: dict[str, str], tmp_path: Path, writes: int
) -> Iterator[tuple[Daemon, Daemon, list[Daemon]]]:
    """Two daemons on one lock, once ``writes`` writes came from exactly one of them: the
    leader, the follower, both. Stopped (a frozen one resumed first) on the way out."""
    a = Daemon("a", daemon_env(api, "token-a-0123456789", **lock_env), tmp_path)
    b = Daemon("b", daemon_env(api, "token-b-0123456789", **lock_env), tmp_path)
    daemons = [a, b]
    try:
        wait_for(lambda: len(api.writes()) >= writes, 30, f"{writes} writes")
        writers = {w.token for w in api.writes()}
        assert len(writers) == 1, f"two daemons wrote: {writers}"  # exactly one writes
        leader, follower = (a, b) if a.token in writers else (b, a)
        yield leader, follower, daemons
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.send_signal(signal.SIGCONT)
            d.stop()


def takes_over(follower: Daemon, since: float) -> float:
    """When the follower first led: within the TTL of ``since`` plus one interval to notice (the
    old leader renewed at most one interval before), with slack for a loaded 2-core machine."""
    wait_for(follower.led_since, TTL + 10, "the follower to take over")
    took = follower.led_since()
    assert took is not None
    assert took - since <= TTL + INTERVAL + 3.0, f"took over after {took - since:.1f}s"
    return took


def test_two_daemons_one_writer_and_a_handover_after_kill_9(
    lock: tuple[FakeFormationApi, dict[str, str]], tmp_path: Path
) -> None:
    api, lock_env = lock
    with two_daemons(api, lock_env, tmp_path, writes=3) as (leader, follower, daemons):
        assert leader.led_since() is None or follower.led_since() is None
        assert follower.proc.poll() is None
        assert [e for e in follower.events() if e.get("event") == "decision"]  # it samples

        leader.proc.send_signal(signal.SIGKILL)  # kill -9
        killed_at = time.time()
        leader.proc.wait(10)
        took = takes_over(follower, killed_at)
        count = len(api.writes())
        wait_for(lambda: len(api.writes()) >= count + 2, 30, "writes by the new leader")

        epochs = check_journal(api.writes(), daemons)
        print(f"takeover after {took - killed_at:.1f}s, epochs {epochs}")
        assert min(epochs[follower.token]) > max(epochs[leader.token])
        assert all(w.token == follower.token for w in api.writes()[count:])

        follower.proc.send_signal(signal.SIGTERM)
        assert follower.proc.wait(10) == 0
        assert any(e.get("event") == "stopped" for e in follower.events())
        assert api.epoch_now()[1] is False  # the lease was released on SIGTERM


def test_a_frozen_leader_is_replaced_and_writes_nothing_when_resumed(
    lock: tuple[FakeFormationApi, dict[str, str]], tmp_path: Path
) -> None:
    """SIGSTOP the leader (a hung VM): the follower takes over within the TTL; after SIGCONT the
    old leader writes nothing (it finds its lease gone and follows)."""
    api, lock_env = lock
    with two_daemons(api, lock_env, tmp_path, writes=2) as (leader, follower, daemons):
        leader.proc.send_signal(signal.SIGSTOP)
        took = takes_over(follower, time.time())
        count = len(api.writes())
        wait_for(lambda: len(api.writes()) >= count + 1, 30, "a write by the new leader")

        leader.proc.send_signal(signal.SIGCONT)
        resumed = len(api.writes())
        wait_for(lambda: len(api.writes()) >= resumed + 3, 30, "three more writes")
        after = api.writes()[count:]
        assert all(w.token == follower.token for w in after), [w.token for w in after]
        epochs = check_journal(api.writes(), daemons)
        assert min(epochs[follower.token]) > max(epochs[leader.token])
        # the resumed daemon ticks on, as a follower
        wait_for(
            lambda: any(
                e.get("event") == "decision" and e.get("leader") is False and _iso(e["ts"]) > took
                for e in leader.events()
            ),
            15,
            "the resumed daemon to decide as a follower",
        )
