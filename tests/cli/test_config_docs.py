"""The config tables in docs/configuration.md are generated from the settings models."""

from __future__ import annotations

from pathlib import Path

from autoscaler import registry

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_docs_table_is_the_one_the_models_generate() -> None:
    text = PAGE.read_text()
    assert registry.docs_with_table(text) == text, (
        "docs/configuration.md disagrees with the settings models: "
        "run .venv/bin/python scripts/config_docs.py"
    )


def test_every_variable_the_config_reads_is_in_the_docs() -> None:
    text = PAGE.read_text()
    names = [v.name for _, v in registry.global_variables()]
    names += [f"AUTOSCALER_<P>_{v.name}" for _, v in registry.process_variables()]
    assert names and [n for n in names if f"`{n}`" not in text] == []
