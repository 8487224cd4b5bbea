"""Backing up, checking a backup, restoring one into a new vault, upgrading a vault.

All four need Permission.BACKUP (administrators): a backup holds every message and, with
``include_keys``, what reads them. Audited:

    back_up    a ``backup`` entry after the copy (folder, messages, the snapshot's audit
               head, what was copied): the backup itself ends at the entry before it
    restore    a ``restore`` entry in the new vault, chained to the backup's last entry
    upgrade    an ``upgrade`` entry (formats before and after, the backup taken first)

``check_backup`` reads only the backup folder and writes nothing, so it is not audited (there
is no vault to write to; the next backup or restore is).
"""

from __future__ import annotations

from pathlib import Path

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.backup import checking, restoring, taking, upgrading
from mailvault.backup.checking import BackupCheck
from mailvault.backup.restoring import Restored
from mailvault.backup.taking import BackupReport
from mailvault.backup.upgrading import Upgraded
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.store import audit, file_modes
from mailvault.store.vault_format import FORMAT_VERSION
from mailvault.vault import Vault, default_vault_path

__all__ = ["FORMAT_VERSION", "back_up", "check_backup", "format_of", "restore", "upgrade"]


def back_up(vault: Vault, who: Principal, to: Path, *, include_keys: bool = False,
            include_index: bool = False) -> BackupReport:
    """Back the open vault up into ``to`` while it stays in use; audited."""
    require(who, Permission.BACKUP)
    report = taking.take(vault.path, vault.engine, to, include_keys=include_keys,
                         include_index=include_index, gateway=_gateway_folder(vault))
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "backup", {
            "folder": str(report.folder), "messages": report.messages,
            "audit_head": f"{report.audit_seq}:{report.audit_hash}",
            "copied": len(report.copied), "kept": len(report.kept),
            "bytes_copied": report.bytes_copied, "keys": include_keys,
            "index": include_index, "gateway": report.gateway_included})
    return report


def _gateway_folder(vault: Vault) -> Path | None:
    """The gateway folder when it lives inside the vault or beside it (in the same parent
    folder); one elsewhere is the operator's to copy (docs/gateway.md)."""
    folder = GatewayMailboxes.of(vault.path, vault.settings.gateway).folder.resolve()
    home = vault.path.resolve()
    return folder if folder.is_relative_to(home) or folder.parent == home.parent else None


def check_backup(who: Principal, folder: Path) -> BackupCheck:
    """Check a backup on its own (every file's SHA-256, the catalog copy); not audited."""
    require(who, Permission.BACKUP)
    return checking.check(folder)


def restore(who: Principal, backup: Path, target: Path | None, keys_from: Path | None = None,
            passphrase: str | None = None) -> Restored:
    """Restore a backup into a new vault at ``target`` (default: $MAILVAULT_VAULT or
    ./vault), rebuild its index (opening does), and record the restore as the entry after
    the backup's last."""
    require(who, Permission.BACKUP)
    with file_modes.owner_only_umask():
        restored = restoring.restore(backup, target or default_vault_path(), keys_from,
                                     passphrase)
        with Vault.open(restored.vault, passphrase) as vault, vault.engine.begin() as conn:
            audit.record(conn, who.name, "restore", {
                "backup": str(restored.backup), "messages": restored.messages,
                "from_head": f"{restored.audit_seq}:{restored.audit_hash}",
                "format_before": restored.format_before,
                "settings_changed": restored.settings_changed})
    return restored


def upgrade(who: Principal, path: Path | None, backup_to: Path | None) -> Upgraded:
    """Migrate a vault of an older format to this release's, after a backup when
    ``backup_to`` names a folder; audited in the upgraded vault."""
    require(who, Permission.BACKUP)
    with file_modes.owner_only_umask():
        upgraded = upgrading.upgrade(path or default_vault_path(), backup_to)
        if upgraded.before != upgraded.after:
            with Vault.open(upgraded.vault) as vault, vault.engine.begin() as conn:
                audit.record(conn, who.name, "upgrade", {
                    "from_format": upgraded.before, "to_format": upgraded.after,
                    "backup": str(upgraded.backup.folder) if upgraded.backup else None})
    return upgraded


def format_of(path: Path | None) -> int:
    """The format of the vault at ``path`` (what ``upgrade`` would start from); not
    audited: it reads one row."""
    return upgrading.vault_format_of(path or default_vault_path())
