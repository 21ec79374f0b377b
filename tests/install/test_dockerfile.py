"""The Dockerfile and the lock it installs from stay what docs/operations.md says they are.

No Docker daemon is available to the tests, so the image is not built here: these check the
file's promises (a base pinned to a patch release and a digest, a HEALTHCHECK on ``/healthz``,
dependencies from ``constraints.txt``) and that ``constraints.txt`` still satisfies every
requirement of the daemon in ``pyproject.toml``."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_base_image_is_pinned_to_a_patch_release_and_a_digest() -> None:
    froms = [i for i in _instructions() if i.startswith("FROM ")]
    assert len(froms) == 1
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim(-\w+)?@sha256:[0-9a-f]{64}", froms[0])


def test_a_healthcheck_asks_healthz_on_the_metrics_port_the_image_sets() -> None:
    ins = _instructions()
    (check,) = [i for i in ins if i.startswith("HEALTHCHECK ")]
    assert "/healthz" in check and "AUTOSCALER_METRICS_PORT" in check
    assert any(i.startswith("ENV ") and "AUTOSCALER_METRICS_PORT=" in i for i in ins)


def test_dependencies_come_from_the_constraints_file_and_the_image_runs_the_daemon() -> None:
    runs = " ".join(i for i in _instructions() if i.startswith("RUN "))
    assert "--requirement constraints.txt" in runs
    assert "--no-deps" in runs and "pip check" in runs
    assert any(i.startswith("USER ") and "root" not in i for i in _instructions())
    assert _instructions()[-1] == 'CMD ["autoscaler", "run"]'


def test_the_constraints_satisfy_every_requirement_of_the_daemon() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = [Requirement(r) for r in project["dependencies"]]
    needed += [Requirement(r) for r in project["optional-dependencies"]["daemon"]]
    pins = _pins()
    for req in needed:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt: run bash scripts/constraints"
        assert req.specifier.contains(pins[name]), f"{req} is not met by {name}=={pins[name]}"
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary
            assert canonicalize_name(f"{req.name}-{extra}") in pins
