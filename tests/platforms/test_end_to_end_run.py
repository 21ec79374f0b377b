"""End to end: the daemon (``autoscaler run``) with a real RQ queue in the real Redis as the
worker's signal, scaling a fake Heroku or Render over real HTTP.

A burst of jobs waits longer than the worker's up threshold, so the daemon scales the worker from
1 to 2 with exactly one write; the up cooldown then keeps it from writing again. With
``AUTOSCALER_DRY_RUN=true`` the same burst leads to zero writes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue

from .conftest import HEROKU_TOKEN, RENDER_KEY, heroku_env, render_env
from .fake_heroku import FakeHeroku
from .fake_render import FakeRender
from .fakeserver import Call, FakeServer

REDIS_URL = "redis://127.0.0.1:6379/6"  # this test area's Redis database
ROOT = Path(__file__).resolve().parents[2]
WORKER = {
    "AUTOSCALER_PROCESSES": "worker",
    "AUTOSCALER_WORKER_SOURCE": "rq",
    "AUTOSCALER_WORKER_MIN": "1",
    "AUTOSCALER_WORKER_MAX": "4",
    "AUTOSCALER_WORKER_UP_THRESHOLD": "1s",
    "AUTOSCALER_WORKER_DOWN_THRESHOLD": "500ms",
    "AUTOSCALER_WORKER_UP_STEP": "1",
    "AUTOSCALER_INTERVAL": "1s",
    "AUTOSCALER_LOCK": "none",
    "REDIS_URL": REDIS_URL,
}


def _noop() -> None:
    return None


@pytest.fixture
def burst() -> Iterator[Callable[[int], None]]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()

    def enqueue(jobs: int) -> None:
        queue = Queue("default", connection=client)
        for _ in range(jobs):
            queue.enqueue(_noop)  # nothing runs them: they wait

    yield enqueue
    client.flushdb()
    client.close()


def _heroku() -> tuple[FakeServer, dict[str, str], str]:
    fake = FakeHeroku(token=HEROKU_TOKEN, formation={"web": 1, "worker": 1}).start()
    env = heroku_env(fake.url)
    env.update(WORKER)
    return fake, env, HEROKU_TOKEN


def _render() -> tuple[FakeServer, dict[str, str], str]:
    fake = FakeRender(api_key=RENDER_KEY, services={"srv-wrk0000001": 1}).start()
    env = render_env(fake.url)
    del env["AUTOSCALER_WEB_RENDER_SERVICE_ID"]
    env.update(WORKER)
    return fake, env, RENDER_KEY


EXPECTED_WRITE = {
    "heroku": ("PATCH", "/apps/my-app/formation", {"updates": [{"type": "worker", "quantity": 2}]}),
    "render": ("POST", "/v1/services/srv-wrk0000001/scale", {"numInstances": 2}),
}
SETUPS = {"heroku": _heroku, "render": _render}
WRITES = {"heroku": "PATCH", "render": "POST"}


def _run_daemon(tmp_path: Path, env: dict[str, str], until: Callable[[], bool]) -> str:
    """Run ``autoscaler run`` until ``until()`` holds (or 30 s), stop it with SIGTERM."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOSCALER_", "REDIS_URL"))}
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "autoscaler", "run"],
            cwd=tmp_path,
            env={**clean, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not until() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(15)
    text = log.read_text()
    assert code == 0, text
    return text


def _reads_after(fake: FakeServer, first: Call | None) -> int:
    later = fake.journal if first is None else fake.journal[fake.journal.index(first) :]
    return len([c for c in later if c.method == "GET"])


@pytest.mark.parametrize("platform", ["heroku", "render"])
def test_a_burst_of_jobs_leads_to_exactly_one_write_to_the_platform(
    platform: str, burst: Callable[[int], None], tmp_path: Path
) -> None:
    fake, env, token = SETUPS[platform]()
    try:
        burst(20)

        def settled() -> bool:  # one write, then four more ticks without another
            writes = fake.calls(WRITES[platform])
            return bool(writes) and _reads_after(fake, writes[0]) >= 5

        output = _run_daemon(tmp_path, env, settled)
    finally:
        fake.stop()
    writes = [(c.method, c.path, c.body) for c in fake.calls(WRITES[platform])]
    assert writes == [EXPECTED_WRITE[platform]], output
    assert "event=decision process=worker action=up current=1 desired=2" in output
    assert token not in output


def test_herokus_dyno_states_teach_the_daemon_how_long_its_upscale_took(
    burst: Callable[[int], None], tmp_path: Path
) -> None:
    fake, env, _ = _heroku()
    assert isinstance(fake, FakeHeroku)
    fake.dyno_boot_s = 3.0  # a new dyno is `starting` for 3 s, then `up`
    env["AUTOSCALER_LOG_LEVEL"] = "debug"  # holds too, so that every decision line shows
    log = tmp_path / "daemon.log"
    try:
        burst(20)
        output = _run_daemon(tmp_path, env, lambda: "boot_s=" in log.read_text())
    finally:
        fake.stop()
    learned = re.search(r"process=worker .*boot_s=([0-9.]+)", output)
    assert learned is not None, output
    assert 3.0 <= float(learned[1]) <= 6.0  # read at 1 s ticks


@pytest.mark.parametrize("platform", ["heroku", "render"])
def test_a_dry_run_makes_no_write_at_all(
    platform: str, burst: Callable[[int], None], tmp_path: Path
) -> None:
    fake, env, token = SETUPS[platform]()
    try:
        burst(20)
        env["AUTOSCALER_DRY_RUN"] = "true"
        output = _run_daemon(tmp_path, env, lambda: len(fake.calls("GET")) >= 6)
    finally:
        fake.stop()
    assert "action=up current=1 desired=2" in output  # it did decide to scale up
    assert len(fake.calls("GET")) >= 6
    assert fake.calls(WRITES[platform]) == []
    assert token not in output


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], *argv: str) -> int:
    from autoscaler.cli import main

    for key in list(os.environ):
        if key.startswith(("AUTOSCALER_", "REDIS_URL", "DATABASE_URL")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return main(list(argv))


@pytest.mark.parametrize("platform", ["heroku", "render"])
def test_check_proves_access_without_writing(
    platform: str,
    burst: Callable[[int], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, env, token = SETUPS[platform]()
    try:
        code = _cli(monkeypatch, tmp_path, env, "check")
    finally:
        fake.stop()
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"platform {platform}: " in out and "worker=1" in out
    assert {c.method for c in fake.journal} == {"GET"}
    assert token not in out


def test_check_refuses_a_render_service_under_renders_own_autoscaling(
    burst: Callable[[int], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, env, _ = _render()
    assert isinstance(fake, FakeRender)
    fake.enable_autoscaling("srv-wrk0000001")
    try:
        code = _cli(monkeypatch, tmp_path, env, "check")
    finally:
        fake.stop()
    captured = capsys.readouterr()
    assert code == 2
    assert "AUTOSCALER_WORKER_RENDER_SERVICE_ID" in captured.err
    assert "Render's own autoscaling is enabled" in captured.err
