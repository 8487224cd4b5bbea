"""Fixtures of the core tests: the whole corpus archived once per session, read-only after."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.core.corpus_reading import Expected, corpus_messages
from tests.support import run


@dataclass(frozen=True)
class CorpusVault:
    """A vault holding eml/, mbox/ and maildir/ of the corpus, with what the import said."""

    path: Path
    summary: dict[str, Any]
    expected: list[Expected]

    @property
    def by_sha(self) -> dict[str, Expected]:
        return {m.sha256: m for m in self.expected}


@pytest.fixture(scope="session")
def corpus_vault(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> CorpusVault:
    """The corpus imported by the real ``mailvault import`` (tests must not change it)."""
    path = tmp_path_factory.mktemp("corpus") / "vault"
    created = run("init", "--vault", path)
    assert created.returncode == 0, created.stderr
    imported = run("import", corpus / "eml", corpus / "mbox", corpus / "maildir",
                   "--vault", path, "--json")
    assert imported.returncode == 0, imported.stderr.decode()
    return CorpusVault(path, json.loads(imported.stdout), corpus_messages(corpus))
