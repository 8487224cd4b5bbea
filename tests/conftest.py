"""Shared fixtures: the real corpus beside the checkout, and fresh vaults in temp folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.vault import Vault
from tests.support import unavailable

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus (../shared/corpus); skipped where absent, a failure in CI."""
    if not CORPUS.is_dir():
        unavailable(f"the corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def vault(vault_path: Path) -> Iterator[Vault]:
    """A new, empty vault with a key file."""
    opened = Vault.create(vault_path)
    try:
        yield opened
    finally:
        opened.close()
