"""Fixtures of the core tests: the whole corpus archived once per session, read-only after."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tantivy

from mailvault.search.index import LAYOUTS, MARKER_FILE, layout_schema
from tests.core.corpus_reading import Expected, corpus_messages
from tests.postgres import SEARCH_BACKENDS, search_init_options
from tests.support import invoke, run, write_mbox


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
    return _imported(corpus, tmp_path_factory.mktemp("corpus"), [])


@pytest.fixture(scope="session")
def postgresql_corpus_vault(request: pytest.FixtureRequest, corpus: Path,
                            tmp_path_factory: pytest.TempPathFactory) -> CorpusVault:
    """The corpus imported into a vault searched by PostgreSQL (read-only after)."""
    folder = tmp_path_factory.mktemp("corpus-postgresql")
    return _imported(corpus, folder, search_init_options(request, "postgresql", folder))


@pytest.fixture(params=SEARCH_BACKENDS)
def search_corpus_vault(request: pytest.FixtureRequest) -> CorpusVault:
    """The corpus vault of each search backend, in turn."""
    name = "corpus_vault" if request.param == "tantivy" else "postgresql_corpus_vault"
    vault: CorpusVault = request.getfixturevalue(name)
    return vault


def _imported(corpus: Path, folder: Path, options: list[str]) -> CorpusVault:
    path = folder / "vault"
    created = run("init", "--vault", path, *options)
    assert created.returncode == 0, created.stderr
    imported = run("import", corpus / "eml", corpus / "mbox", corpus / "maildir",
                   "--vault", path, "--json")
    assert imported.returncode == 0, imported.stderr.decode()
    return CorpusVault(path, json.loads(imported.stdout), corpus_messages(corpus))


def vault_with_older_index(path: Path, corpus: Path, version: int,
                           messages: list[bytes]) -> Path:
    """A vault holding Enron's inbox and ``messages`` whose index folder is what an older
    mailvault left, of index schema ``version``: its fields and its version in the marker,
    no documents yet (healing on the next open writes them as that layout holds them)."""
    invoke("init", "--vault", path)
    built = path.parent / "built.mbox"
    write_mbox(built, messages)
    for source in (corpus / "mbox" / "enron-allen-p" / "inbox.mbox", built):
        assert invoke("import", source, "--vault", path).exit_code == 0
    folder = path / "index"
    for entry in folder.iterdir():
        entry.unlink()
    tantivy.Index(layout_schema(LAYOUTS[version]), path=str(folder))
    (folder / MARKER_FILE).write_text(json.dumps(
        {"watermark": 0, "generation": 0, "schema": version}))
    return path
