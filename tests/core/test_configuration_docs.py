"""docs/configuration.md documents every setting declared in mailvault/config.py."""

from __future__ import annotations

import re
from pathlib import Path

from mailvault.config import describe_settings, render_settings_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
REGENERATE = "regenerate it: .venv/bin/python -m mailvault.config > docs/configuration.md"


def documented() -> set[tuple[str, str]]:
    """(section, setting) pairs of the tables in the document."""
    found = set()
    section = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## \[(.+)\]$", line)
        if heading:
            section = heading.group(1)
            continue
        row = re.match(r"^\| `([^`]+)` \|", line)
        if row and section is not None:
            found.add((section, row.group(1)))
    return found


def test_every_setting_is_documented() -> None:
    declared = {(section, name) for section, name, _default, _help in describe_settings()}
    missing = sorted(f"[{s}] {n}" for s, n in declared - documented())
    assert not missing, f"{DOC.name} lacks {', '.join(missing)}; {REGENERATE}"


def test_every_setting_has_a_help_sentence() -> None:
    silent = [f"[{s}] {n}" for s, n, _default, text in describe_settings() if not text.strip()]
    assert not silent, f"settings without help: {', '.join(silent)}"


def test_the_document_is_the_generated_one() -> None:
    assert DOC.read_text(encoding="utf-8") == render_settings_doc(), \
        f"{DOC.name} is out of date (a default or a help text changed); {REGENERATE}"
