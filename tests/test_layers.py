"""The core and the adapters know each other only through the registry: no core module but the
CLI and the registry imports an adapter (lazy imports inside functions included), and no
adapter imports the core's config (each reads its own settings, ``autoscaler.configkit``)."""

from __future__ import annotations

import ast
from pathlib import Path

import autoscaler

ROOT = Path(autoscaler.__file__).parent
ADAPTERS = ROOT.parent / "adapters"
#: the adapter packages (``adapters/<name>``, linked into the ``autoscaler`` package)
ADAPTER_PACKAGES = ("sources", "platforms", "locks", "stores", "web")
#: the core modules that may build adapters
GATEWAYS = ("cli.py", "registry.py")


def imported(source: str) -> set[str]:
    """Every module an import statement in ``source`` names, at any depth of the code."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def adapter_imports(source: str) -> set[str]:
    return {
        name
        for name in imported(source)
        if name.split(".")[:2] in (["autoscaler", p] for p in ADAPTER_PACKAGES)
    }


def config_imports(source: str) -> set[str]:
    return {
        name
        for name in imported(source)
        if name == "autoscaler.config" or name.startswith("autoscaler.config.")
    }


def core_modules() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        top = path.relative_to(ROOT).parts[0]
        if top in ADAPTER_PACKAGES or top in GATEWAYS:
            continue
        out.append(path)
    return out


def test_the_finders_see_lazy_and_from_imports() -> None:
    code = (
        "import autoscaler.configkit\n"
        "from autoscaler import config\n"
        "def f():\n"
        "    from autoscaler.sources.sim import SimSource\n"
        "    import autoscaler.stores.memory\n"
        "    from autoscaler.sim import live\n"
    )
    assert adapter_imports(code) == {
        "autoscaler.sources.sim",
        "autoscaler.sources.sim.SimSource",
        "autoscaler.stores.memory",
    }
    assert config_imports(code) == {"autoscaler.config"}


def test_no_core_module_but_the_cli_and_the_registry_imports_an_adapter() -> None:
    modules = core_modules()
    assert ROOT / "loop.py" in modules and ROOT / "sim" / "owntraffic.py" in modules
    found = {
        str(path.relative_to(ROOT)): names
        for path in modules
        if (names := adapter_imports(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_no_adapter_imports_the_core_config() -> None:
    adapters = [p for p in sorted(ADAPTERS.rglob("*.py")) if p.name != "registry.py"]
    assert ADAPTERS / "sources" / "rq.py" in adapters
    found = {
        str(path.relative_to(ADAPTERS)): names
        for path in adapters
        if (names := config_imports(path.read_text(encoding="utf-8")))
    }
    assert found == {}
