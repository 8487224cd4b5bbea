"""Fixtures of the compliance tests: the Enron mailbox archived once per session, copied into
a fresh vault for each test that changes it, and small vaults of built messages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mailvault.ingest.files import FileOptions, Reader
from mailvault.ingest.pipeline import Outcome, Pipeline
from mailvault.records import Incoming, Provenance
from mailvault.vault import Vault
from tests.support import copy_vault, write_settings

ENRON = Path("mbox") / "enron-allen-p"
ENRON_MESSAGES = 3034
# Small volumes, so that the test vaults have sealed volumes for compaction to work on; fast
# zstd levels, so that moves are quick (the packing is the same at any level).
SETTINGS = "[store]\nvolume_max_mb = 1\n\n[tiers]\nopen_level = 3\ndeep_level = 3\n"


@pytest.fixture(scope="session")
def enron_template(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault holding the Enron allen-p mailbox, all in Active (copy it before changing)."""
    path = tmp_path_factory.mktemp("enron") / "vault"
    vault = Vault.create(path)
    try:
        write_settings(path, SETTINGS)
        vault.close()
        vault = Vault.open(path)
        with Pipeline(vault, actor="test") as pipeline:
            report = pipeline.archive_many(Reader([corpus / ENRON], FileOptions()))
        assert report.archived == ENRON_MESSAGES
    finally:
        vault.close()
    return path


@pytest.fixture
def enron_path(enron_template: Path, tmp_path: Path) -> Path:
    """A private copy of the Enron vault (folder only)."""
    return copy_vault(enron_template, tmp_path / "enron")


@pytest.fixture
def enron(enron_path: Path) -> Iterator[Vault]:
    """A private copy of the Enron vault, open."""
    vault = Vault.open(enron_path)
    try:
        yield vault
    finally:
        vault.close()


@pytest.fixture
def small_vault(vault_path: Path) -> Iterator[Vault]:
    """An empty vault with small volumes (built messages go in with ``archive``)."""
    created = Vault.create(vault_path)
    created.close()
    write_settings(vault_path, SETTINGS)
    vault = Vault.open(vault_path)
    try:
        yield vault
    finally:
        vault.close()


def archive(vault: Vault, raws: Sequence[bytes], folder: str = "INBOX",
            source: str = "test") -> list[int]:
    """Archive built messages through the pipeline; their ids, in order."""
    items = [Incoming(raw, Provenance(kind="file", source=source, folder=folder, item=str(i)))
             for i, raw in enumerate(raws)]
    outcomes: list[Outcome] = []
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        pipeline.archive_many(items, on_batch=outcomes.extend)
    ids = [o.message_id for o in outcomes]
    assert all(i is not None for i in ids)
    return [i for i in ids if i is not None]
