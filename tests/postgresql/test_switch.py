"""The switch (MAILVAULT_TEST_CATALOG=postgresql) really moves the suite's vaults to
PostgreSQL: the shared fixture's vault and a vault made by the real program alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailvault.vault import CATALOG_FILE, Vault
from tests.support import CATALOG_PROFILE, run

pytestmark = pytest.mark.skipif(CATALOG_PROFILE != "postgresql",
                                reason="only under MAILVAULT_TEST_CATALOG=postgresql")


def test_the_vault_fixture_is_on_postgresql(vault: Vault) -> None:
    assert vault.engine.dialect.name == "postgresql"
    assert not (vault.path / CATALOG_FILE).exists()


def test_a_vault_made_by_the_program_is_on_postgresql(tmp_path: Path) -> None:
    assert run("init", "--vault", tmp_path / "vault").returncode == 0
    with Vault.open(tmp_path / "vault") as opened:
        assert opened.engine.dialect.name == "postgresql"
