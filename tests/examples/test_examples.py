"""The deploy recipes in ``examples/`` work as documented.

End to end, per example: each ``Procfile`` line runs as the platform would run it (``$PORT``,
``$REDIS_URL``; ``0.0.0.0`` becomes ``127.0.0.1``), the web process under gunicorn or uvicorn
and the worker as a real RQ or Celery worker, all on the real Redis; the daemon (``autoscaler
run``) reads the example README's config vars for the platform, pointed at the project's fake
Heroku or Render API. Requests go through the web server stamped as the platform's router
stamps them (queued 300 ms), and jobs are enqueued through the app's own ``/jobs`` endpoint, so
that both signals cross their thresholds; the test passes when the fake platform has seen both
``web`` and ``worker`` scaled above one.

Cheap checks: each README's config blocks load without error or warning, and every package the
example imports or runs is named in its requirements file.

The FastAPI + Celery example runs under ``.venv-celery`` (kombu needs redis-py 6.4+, this
environment has redis-py 5 for arq): ``scripts/test`` installs the app side there.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis

from autoscaler.config import load
from tests.helpers import empty_redis
from tests.platforms.fake_heroku import FakeHeroku
from tests.platforms.fake_render import FakeRender

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REDIS_URL = "redis://127.0.0.1:6379/12"  # this area's Redis database
HEROKU_TOKEN = "example-heroku-token-5b1d7c"
RENDER_KEY = "rnd_exampleRenderKey5b1d7c"
COMMANDS = {  # executable in a Procfile -> the distribution that provides it
    "gunicorn": "gunicorn",
    "uvicorn": "uvicorn",
    "rq": "rq",
    "celery": "celery",
    "autoscaler": "queue-autoscaler",
}
# Faster than production so the test takes seconds: the README's values otherwise.
FAST = {
    "AUTOSCALER_INTERVAL": "1s",
    "AUTOSCALER_WEB_UP_THRESHOLD": "100ms",
    "AUTOSCALER_WEB_WINDOW": "5s",
    "AUTOSCALER_WORKER_UP_THRESHOLD": "1s",
    "AUTOSCALER_WORKER_DOWN_THRESHOLD": "500ms",
    "AUTOSCALER_WEB_DOWN_THRESHOLD": "20ms",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def config_block(example: str, platform: str) -> dict[str, str]:
    """The ``KEY=value`` block after ``<!-- config:<platform> -->`` in the example's README."""
    text = (EXAMPLES / example / "README.md").read_text()
    match = re.search(rf"<!-- config:{platform} -->\n```\n(.*?)```", text, re.S)
    assert match is not None, f"{example}/README.md has no config block for {platform}"
    pairs = [line.split("=", 1) for line in match.group(1).splitlines() if line.strip()]
    return {key.strip(): value.strip() for key, value in pairs}


def procfile(example: str) -> dict[str, str]:
    lines = (EXAMPLES / example / "Procfile").read_text().splitlines()
    return dict(tuple(part.strip() for part in line.split(":", 1)) for line in lines if line)  # type: ignore[misc]


def requirements(path: Path) -> set[str]:
    names = set()
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            match = re.match(r"[A-Za-z0-9._-]+", line)
            assert match is not None, line
            names.add(_norm(match.group(0)))
    return names


@pytest.mark.parametrize(
    ("example", "platform"),
    [(e, p) for e in ("flask-rq", "fastapi-celery") for p in ("heroku", "render")],
)
def test_the_documented_config_vars_load_without_error_or_warning(
    example: str, platform: str
) -> None:
    env = {**config_block(example, platform), "REDIS_URL": REDIS_URL}
    settings = load(env)
    assert settings.glob.platform == platform
    assert list(settings.processes) == ["web", "worker"]
    assert settings.warnings == []


@pytest.mark.parametrize("example", ["flask-rq", "fastapi-celery"])
def test_every_package_the_example_imports_or_runs_is_in_its_requirements(example: str) -> None:
    folder = EXAMPLES / example
    required = set().union(*(requirements(p) for p in folder.glob("requirements*.txt")))
    local = {p.stem for p in folder.glob("*.py")}
    owners = metadata.packages_distributions()
    needed: set[str] = set()
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local:
                    continue
                needed.add("queue-autoscaler" if top == "autoscaler" else _norm(owners[top][0]))
    needed |= {COMMANDS[cmd.split()[0]] for cmd in procfile(example).values()}
    assert needed - required == set()


# ---- end to end ---------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _celery_bin() -> Path:
    """The bin directory of an environment with redis-py 6.4+, Celery, FastAPI, uvicorn and this
    package's app side (``scripts/test`` makes ``.venv-celery`` so)."""
    explicit = os.environ.get("AUTOSCALER_TEST_CELERY_PYTHON")
    python = Path(explicit) if explicit else ROOT / ".venv-celery" / "bin" / "python"
    if redis.VERSION >= (6, 4):
        python = Path(sys.executable)
    probe = "import celery, fastapi, uvicorn, autoscaler.web.asgi, autoscaler.sources.celery_hook"
    if not python.exists() or subprocess.run([str(python), "-c", probe], check=False).returncode:
        pytest.fail(
            "the fastapi-celery example needs .venv-celery with the app side: run "
            "bash scripts/test, or .venv-celery/bin/pip install 'celery[redis]>=5.4' "
            "'redis>=6.4' fastapi uvicorn -e ."
        )
    return python.parent


class Processes:
    """The example's Procfile processes, each in its own session, logs in temporary files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def start(self, name: str, command: str, bin_dir: Path, env: dict[str, str]) -> None:
        command = command.replace("0.0.0.0", "127.0.0.1")  # loopback only in tests
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOSCALER_", "REDIS"))}
        full = {
            **base,
            **env,
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        full.pop("PYTHONPATH", None)
        log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.folder,
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = (proc, log)

    def log(self, name: str) -> str:
        log = self.procs[name][1]
        log.seek(0)
        return log.read().decode(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in self.procs)

    def assert_running(self) -> None:
        for name, (proc, _) in self.procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{self.logs()}"

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from empty_redis(REDIS_URL)


def _wait_for_web(port: int, procs: Processes) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        procs.assert_running()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the web process did not answer\n{procs.logs()}")


def _drive(port: int, procs: Processes, formation: Callable[[], dict[str, int]]) -> None:
    """Enqueue jobs through the app, then send router-stamped requests until both processes
    are scaled above one (or 60 s)."""
    with httpx.Client(timeout=5) as client:
        r = client.post(f"http://127.0.0.1:{port}/jobs", params={"n": 30, "seconds": 2})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if min(formation().values()) > 1:
                return
            procs.assert_running()
            for _ in range(5):
                stamp = f"t={int((time.time() - 0.3) * 1000)}"  # queued 300 ms at the router
                reply = client.get(f"http://127.0.0.1:{port}/", headers={"X-Request-Start": stamp})
                assert reply.status_code == 200
            time.sleep(0.2)
    raise AssertionError(f"not scaled: {formation()}\n{procs.logs()}")


def _copy(example: str, tmp_path: Path) -> Path:
    folder = tmp_path / example
    shutil.copytree(EXAMPLES / example, folder)
    return folder


@pytest.mark.slow
@pytest.mark.integration
def test_flask_rq_on_heroku_scales_web_and_worker(tmp_path: Path, db: redis.Redis) -> None:
    folder = _copy("flask-rq", tmp_path)
    bin_dir = Path(sys.executable).parent
    port = _free_port()
    app_env = {"REDIS_URL": REDIS_URL, "PORT": str(port), "AUTOSCALER_FLUSH_INTERVAL": "1s"}
    with FakeHeroku(
        token=HEROKU_TOKEN, app="my-flask-app", formation={"web": 1, "worker": 1}
    ) as fake:
        daemon_env = {
            **config_block("flask-rq", "heroku"),
            **FAST,
            "HEROKU_API_TOKEN": HEROKU_TOKEN,
            "HEROKU_API_URL": fake.url,
            "REDIS_URL": REDIS_URL,
            "DYNO": "autoscaler.1",
        }
        procs = Processes(folder)
        commands = procfile("flask-rq")
        try:
            procs.start("web", commands["web"], bin_dir, {**app_env, "DYNO": "web.1"})
            procs.start("worker", commands["worker"], bin_dir, {**app_env, "DYNO": "worker.1"})
            procs.start("autoscaler", commands["autoscaler"], bin_dir, daemon_env)
            _wait_for_web(port, procs)
            _drive(port, procs, lambda: {p: fake.quantity(p) for p in ("web", "worker")})
        finally:
            procs.stop()
        daemon_log = procs.log("autoscaler")
        worker_log = procs.log("worker")
    assert "event=decision process=web action=up" in daemon_log, daemon_log
    assert "event=decision process=worker action=up" in daemon_log, daemon_log
    assert HEROKU_TOKEN not in daemon_log
    assert "Job OK" in worker_log or "Successfully completed" in worker_log, worker_log


@pytest.mark.slow
@pytest.mark.integration
def test_fastapi_celery_on_render_scales_web_and_worker(tmp_path: Path, db: redis.Redis) -> None:
    folder = _copy("fastapi-celery", tmp_path)
    celery_bin = _celery_bin()
    port = _free_port()
    app_env = {"REDIS_URL": REDIS_URL, "PORT": str(port), "AUTOSCALER_FLUSH_INTERVAL": "1s"}
    block = config_block("fastapi-celery", "render")
    web_id = block["AUTOSCALER_WEB_RENDER_SERVICE_ID"]
    worker_id = block["AUTOSCALER_WORKER_RENDER_SERVICE_ID"]
    with FakeRender(api_key=RENDER_KEY, services={web_id: 1, worker_id: 1}) as fake:
        daemon_env = {
            **block,
            **FAST,
            "RENDER_API_KEY": RENDER_KEY,
            "RENDER_API_URL": fake.url + "/v1",
            "REDIS_URL": REDIS_URL,
        }
        procs = Processes(folder)
        commands = procfile("fastapi-celery")
        try:
            procs.start("web", commands["web"], celery_bin, app_env)
            procs.start("worker", commands["worker"], celery_bin, app_env)
            procs.start(
                "autoscaler", commands["autoscaler"], Path(sys.executable).parent, daemon_env
            )
            _wait_for_web(port, procs)
            _drive(port, procs, lambda: {p: fake.instances(p) for p in (web_id, worker_id)})
        finally:
            procs.stop()
        daemon_log = procs.log("autoscaler")
        worker_log = procs.log("worker")
    assert "event=decision process=web action=up" in daemon_log, daemon_log
    assert "event=decision process=worker action=up" in daemon_log, daemon_log
    assert RENDER_KEY not in daemon_log
    assert re.search(r"Task work\[[0-9a-f-]+\] received", worker_log), worker_log
