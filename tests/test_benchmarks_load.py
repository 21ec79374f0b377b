"""Every benchmark loads: its imports resolve against the project as it is now.

Benchmarks are not run by the tests (they time and measure, and some need the public traces),
so a renamed or removed name they import would otherwise go unnoticed until someone runs
them. Each is loaded in a fresh interpreter as a module (not ``__main__``: nothing runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))
LOAD = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location('bench_under_test', sys.argv[1]); "
    "module = importlib.util.module_from_spec(spec); sys.modules[spec.name] = module; "
    "spec.loader.exec_module(module); "
    "assert callable(getattr(module, 'main', None)), 'no main()'"
)


def test_there_are_benchmarks() -> None:
    assert len(BENCHMARKS) >= 10


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_the_benchmark_loads(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
