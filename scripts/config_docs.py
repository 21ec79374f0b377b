"""Regenerate the tables of config vars in docs/configuration.md from the settings models.

Run ``.venv/bin/python scripts/config_docs.py`` after changing a settings model;
``tests/cli/test_config_docs.py`` fails while the page and the models disagree.
"""

from __future__ import annotations

from pathlib import Path

from autoscaler.registry import docs_with_table

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

if __name__ == "__main__":
    PAGE.write_text(docs_with_table(PAGE.read_text()))
    print(f"wrote {PAGE}")
