"""Backing up, checking a backup, restoring one into a new vault, upgrading a vault.

All four need Permission.BACKUP (administrators): a backup holds every message and, with
``include_keys``, what reads them. Audited:

    back_up    a ``backup`` entry after the copy (folder, messages, the snapshot's audit
               head, what was copied): the backup itself ends at the entry before it; a
               backup that fails writes ``backup-failed`` (folder, the sentence) instead,
               when the catalog can still be written
    restore    a ``restore`` entry in the new vault, chained to the backup's last entry
               (where its catalog and volumes went)
    upgrade    an ``upgrade`` entry (formats before and after, the backup taken first)

``check_backup`` reads only the backup folder and writes nothing, so it is not audited (there
is no vault to write to; the next backup or restore is).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.backup import checking, restoring, taking, upgrading
from mailvault.backup.checking import BackupCheck
from mailvault.backup.destination import Destination
from mailvault.backup.manifest import CATALOG as BACKUP_CATALOG
from mailvault.backup.restoring import Restored
from mailvault.backup.taking import BackupReport, Progress
from mailvault.backup.upgrading import Upgraded
from mailvault.compliance import object_lock
from mailvault.errors import MailvaultError
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.store import audit, file_modes
from mailvault.store.objects import ObjectBlobStore
from mailvault.store.vault_format import FORMAT_VERSION
from mailvault.vault import Vault, default_vault_path

# BACKUP_CATALOG: the catalog's file in a backup; ``back_up``'s progress names its tables
# "BACKUP_CATALOG:TABLE" (rows), every other file by its path (bytes).
__all__ = ["BACKUP_CATALOG", "FORMAT_VERSION", "back_up", "check_backup", "format_of",
           "restore", "upgrade"]


def back_up(vault: Vault, who: Principal, to: Path, *, include_keys: bool = False,
            include_index: bool = False, progress: Progress | None = None) -> BackupReport:
    """Back the open vault up into ``to`` while it stays in use (its catalog in SQLite or
    PostgreSQL, its volumes local or in a bucket); audited."""
    require(who, Permission.BACKUP)
    bucket = vault.blobs.objects if isinstance(vault.blobs, ObjectBlobStore) else None
    try:
        report = taking.take(vault.path, vault.engine, to, include_keys=include_keys,
                             include_index=include_index, gateway=_gateway_folder(vault),
                             objects=bucket, progress=progress)
    except MailvaultError as exc:
        # Best effort: the database may be what failed; the caller hears of it either way.
        with contextlib.suppress(MailvaultError, SQLAlchemyError), vault.engine.begin() as conn:
            audit.record(conn, who.name, "backup-failed", {"folder": str(to),
                                                            "reason": str(exc)})
        raise
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "backup", {
            "folder": str(report.folder), "messages": report.messages,
            "audit_head": f"{report.audit_seq}:{report.audit_hash}",
            "copied": len(report.copied), "kept": len(report.kept),
            "bytes_copied": report.bytes_copied, "keys": include_keys,
            "index": include_index, "gateway": report.gateway_included,
            "catalog": report.catalog, "blobs": report.blobs,
            "objects_copied": report.objects_copied})
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
            passphrase: str | None = None, *, catalog_url: str = "",
            catalog_password_file: str = "", blobs: str = "", s3_endpoint: str = "",
            s3_credentials: Path | None = None) -> Restored:
    """Restore a backup into a new vault at ``target`` (default: $MAILVAULT_VAULT or
    ./vault), rebuild its index (opening does), and record the restore as the entry after
    the backup's last. Its catalog goes into the empty PostgreSQL database ``catalog_url``
    when given (else a SQLite file in the folder), its volumes into the bucket ``blobs``
    with their Object Lock when given (else they stay in the folder); if that upload stops
    part way, the volumes wait on disk and the next command sends them."""
    require(who, Permission.BACKUP)
    to = Destination(target or default_vault_path(), catalog_url, catalog_password_file,
                     blobs, s3_endpoint, s3_credentials)
    with file_modes.owner_only_umask():
        restored = restoring.restore(backup, to, keys_from, passphrase)
        with Vault.open(restored.vault, passphrase) as vault:
            with vault.engine.begin() as conn:
                audit.record(conn, who.name, "restore", {
                    "backup": str(restored.backup), "messages": restored.messages,
                    "from_head": f"{restored.audit_seq}:{restored.audit_hash}",
                    "format_before": restored.format_before,
                    "settings_changed": restored.settings_changed,
                    "catalog": restored.catalog, "blobs": restored.blobs or "local"})
            restored.volumes_uploaded = len(object_lock.upload_pending(vault).uploaded)
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
