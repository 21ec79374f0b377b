"""The app side is light: importing the middleware loads only the standard library and ``redis``
(with the packages ``redis`` itself depends on), and ``autoscaler --help`` loads no third-party
package at all. Each check runs in a fresh interpreter, so nothing imported by pytest counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata

PROBE = """
import json, sys
before = set(sys.modules)
{code}
print(json.dumps(sorted(set(sys.modules) - before)))
"""

DAEMON_MODULES = ("autoscaler.config", "autoscaler.loop", "autoscaler.logs", "autoscaler.metrics")


def loaded_by(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    ).stdout
    return list(json.loads(out))


def third_party(modules: list[str]) -> dict[str, set[str]]:
    """Top-level names outside the standard library and ``autoscaler``: name -> distributions."""
    owners = metadata.packages_distributions()
    out: dict[str, set[str]] = {}
    for name in {m.split(".")[0] for m in modules}:
        if name in sys.stdlib_module_names or name == "autoscaler":
            continue
        out[name] = {_norm(d) for d in owners.get(name, [name])}
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def redis_and_its_requirements() -> set[str]:
    names = {"redis"}
    for req in metadata.requires("redis") or []:
        match = re.match(r"[A-Za-z0-9._-]+", req)
        assert match is not None
        names.add(_norm(match.group(0)))
    return names


def test_importing_the_middleware_loads_only_the_standard_library_and_redis() -> None:
    modules = loaded_by("import autoscaler.web.wsgi, autoscaler.web.asgi")
    assert "autoscaler.web.wsgi" in modules
    assert "redis" in modules
    allowed = redis_and_its_requirements()
    foreign = {name: dists for name, dists in third_party(modules).items() if not dists & allowed}
    assert foreign == {}
    assert [m for m in modules if m.startswith(DAEMON_MODULES)] == []


def test_the_cli_help_loads_no_third_party_package() -> None:
    code = (
        "import contextlib, io\n"
        "from autoscaler import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        cli.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'simulate' in out.getvalue()\n"
    )
    modules = loaded_by(code)
    assert "autoscaler.cli" in modules
    assert third_party(modules) == {}
    assert [m for m in modules if m.startswith(DAEMON_MODULES)] == []


def test_the_simulator_options_are_still_parsed_when_named() -> None:
    from autoscaler import cli

    args = cli._parser("simulate").parse_args(["simulate", "--trace", "t.csv"])
    assert (args.command, args.trace) == ("simulate", "t.csv")
