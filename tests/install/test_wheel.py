"""The built wheel installs one top-level name, ``autoscaler``, and works beside an app that has
its own ``adapters`` package: the middleware publishes from the app's directory and
``autoscaler sample`` reads it back from there.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh venv; the
venv reaches its dependencies through a path entry to this test environment's site-packages
(a plain directory on ``sys.path``: the editable install's own ``.pth`` files there are not run,
so the checkout itself is not importable from the fresh venv)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import empty_redis

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/11"  # this area's Redis database

pytestmark = [pytest.mark.slow, pytest.mark.integration]

APP = """
import time
from adapters.greeting import hello  # the app's own "adapters" package
from autoscaler.web.wsgi import QueueTimeMiddleware

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [hello().encode()]

wrapped = QueueTimeMiddleware(app)
stamp = f"t={int((time.time() - 0.25) * 1000)}"  # queued 250 ms at the router
body = b"".join(wrapped({"HTTP_X_REQUEST_START": stamp}, lambda status, headers: None))
wrapped.recorder.stop()  # the final flush publishes the sample
import autoscaler, adapters
print(body.decode(), autoscaler.__file__, adapters.__file__)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("queue_autoscaler-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """The wheel alone, without even its dependencies: what --help needs is the stdlib."""
    env_dir = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python")),
            *("install", "-q", "--no-deps", "--no-index", str(wheel)),
        ],
        check=True,
        capture_output=True,
    )
    return env_dir


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from empty_redis(REDIS_URL)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "__init__.py").write_text("")
    (tmp_path / "adapters" / "greeting.py").write_text("def hello():\n    return 'hello'\n")
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def test_the_wheel_has_one_top_level_name_and_the_adapters_inside_it(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"autoscaler"}
    for module in ("web/wsgi.py", "web/asgi.py", "sources/rq.py", "locks/redis.py", "registry.py"):
        assert f"autoscaler/{module}" in names


def test_middleware_and_sample_run_beside_an_app_with_its_own_adapters_package(
    venv: Path, app_dir: Path, db: redis.Redis
) -> None:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "REDIS_URL": REDIS_URL,
        "DYNO": "web.1",
        "AUTOSCALER_PLATFORM": "heroku",
        "HEROKU_API_TOKEN": "not-used-by-sample",  # load checks the platform's variables
        "HEROKU_APP_NAME": "demo",
        "AUTOSCALER_PROCESSES": "web",
    }
    ran = subprocess.run(
        [str(venv / "bin" / "python"), "app.py"],
        check=False,
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    body, autoscaler_file, adapters_file = ran.stdout.split()
    assert body == "hello"
    assert autoscaler_file.startswith(str(venv))  # the wheel's copy, not this checkout
    assert adapters_file == str(app_dir / "adapters" / "__init__.py")

    sample = subprocess.run(
        [str(venv / "bin" / "autoscaler"), "sample", "--json"],
        check=False,
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sample.returncode == 0, sample.stderr
    web = json.loads(sample.stdout)["processes"]["web"]
    assert web["ok"] is True
    assert web["samples"] == 1
    assert 200 <= web["value_ms"] <= 5_000
    assert web["age_s"] < 60


def test_without_the_daemon_extra_help_works_and_a_command_says_what_to_install(
    bare_venv: Path, tmp_path: Path
) -> None:
    script = str(bare_venv / "bin" / "autoscaler")
    env = {"PATH": f"{bare_venv / 'bin'}:/usr/bin:/bin"}
    helped = subprocess.run(
        [script, "--help"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    assert "simulate" in helped.stdout
    checked = subprocess.run(
        [script, "check"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert checked.returncode == 2
    assert "pip install 'queue-autoscaler[daemon]'" in checked.stderr
    assert "Traceback" not in checked.stderr
