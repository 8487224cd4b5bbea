"""Upgrading a vault written by an older release (``mailvault upgrade``).

The vault cannot be opened as a Vault while its format is older (opening refuses it), so
this works on the catalog alone: an optional backup first (the same backup as ``mailvault
backup``, without keys), then every migration from the vault's format to the newest, in one
transaction. The caller opens the upgraded vault and records the upgrade in its audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailvault.backup.taking import BackupReport, take
from mailvault.config import load_settings
from mailvault.errors import VaultError
from mailvault.store import vault_format
from mailvault.vault import Vault, open_catalog


@dataclass
class Upgraded:
    """What an upgrade did: the format before and after, and the backup taken first."""

    vault: Path
    before: int
    after: int
    backup: BackupReport | None

    def to_json(self) -> dict[str, Any]:
        return {"vault": str(self.vault), "before": self.before, "after": self.after,
                "backup": self.backup.to_json() if self.backup else None}


def vault_format_of(path: Path) -> int:
    """The format of the vault at ``path`` (0: made before formats were recorded)."""
    path = path.expanduser().resolve()
    if not Vault.exists(path):
        raise VaultError(f"there is no vault in {path}.")
    engine = open_catalog(path, load_settings(path))
    try:
        return vault_format.format_of(engine) or 0
    finally:
        engine.dispose()


def upgrade(path: Path, backup_to: Path | None) -> Upgraded:
    """Bring the vault at ``path`` to the newest format, backed up into ``backup_to`` first
    (when given and there is something to upgrade)."""
    path = path.expanduser().resolve()
    if not Vault.exists(path):
        raise VaultError(f"there is no vault in {path}.")
    engine = open_catalog(path, load_settings(path))
    try:
        found = vault_format.format_of(engine) or 0
        if found > vault_format.FORMAT_VERSION:
            vault_format.check(engine, path)
        backup = None
        if backup_to is not None and found < vault_format.FORMAT_VERSION:
            backup = take(path, engine, backup_to)
        before, after = vault_format.upgrade(engine, path)
    finally:
        engine.dispose()
    return Upgraded(vault=path, before=before, after=after, backup=backup)
