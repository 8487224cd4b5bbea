"""Restoring a backup into a new vault folder (``mailvault init --from-backup DIR``).

The backup is checked whole first; nothing is written when it does not verify. The new
vault gets the backup's catalog, settings, reports, volumes and gateway folder (each inside its
own folder, whatever folders the old vault used), and the keys: from the backup when it holds
them, otherwise from a keys folder kept elsewhere, which must be the one the backup was taken
with. The audit head file is written for the backup's last entry, so the chain goes on from
there; the caller opens the vault (which rebuilds the index) and records the restore.

Whatever the old vault used (a SQLite or PostgreSQL catalog, local volumes or a bucket), the
backup holds a SQLite catalog and volume files, and the new vault keeps them in its folder
unless the destination names an empty PostgreSQL database (the catalog is then copied there
by store/catalog_copy.py, resumably) or a bucket (the caller uploads the volumes with their
Object Lock once the vault is open). The restored settings never name the old vault's
database or bucket (backup/destination.py).

A restore that fails part way removes the folder it made: no half-restored vault is left. A
copy into PostgreSQL cut short is taken up again by the next restore of the same backup.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from mailvault.backup import checking, manifest
from mailvault.backup.destination import (
    Destination,
    check_bucket,
    check_catalog,
    comment_out,
    write_places,
)
from mailvault.backup.manifest import Manifest
from mailvault.backup.taking import GATEWAY, SETTINGS_FILES, key_hashes
from mailvault.compliance.disposition import REPORTS
from mailvault.config import CONFIG_FILE
from mailvault.errors import InputError, VaultError
from mailvault.store import catalog, catalog_copy, database, file_modes, vault_format
from mailvault.store.audit_head import HEAD_FILE, Head, write_head_file
from mailvault.store.crypto import load_chain_key, open_keyring
from mailvault.store.objects import read_credentials_file, store_credentials
from mailvault.vault import CATALOG_FILE, TIERS, Vault

# Settings that name folders outside the vault: a restored vault must not write into the old
# vault's folders, so they are commented out (section -> keys).
_OUTSIDE_FOLDERS = {"tiers": {f"{tier}_folder" for tier in TIERS}, "spool": {"folder"},
                    "gateway": {"folder"}}


@dataclass
class Restored:
    """What a restore put in place."""

    vault: Path
    backup: Path
    messages: int
    audit_seq: int
    audit_hash: str
    format_before: int
    keys_from: str
    settings_changed: list[str]
    catalog: str = "sqlite"
    blobs: str = ""
    volumes_uploaded: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"vault": str(self.vault), "backup": str(self.backup),
                "messages": self.messages, "audit_head": f"{self.audit_seq}:{self.audit_hash}",
                "format_before": self.format_before, "keys_from": self.keys_from,
                "settings_changed": self.settings_changed, "catalog": self.catalog,
                "blobs": self.blobs, "volumes_uploaded": self.volumes_uploaded}


def restore(backup: Path, to: Destination, keys_from: Path | None = None,
            passphrase: str | None = None) -> Restored:
    """Put the backup in ``backup`` in place as a new vault in ``to.folder`` (a new or
    empty folder), its catalog in ``to.catalog_url`` when given. The vault is not opened
    here, so its volumes are not uploaded to ``to.blobs`` yet."""
    backup, target = backup.expanduser().resolve(), to.folder.expanduser().resolve()
    to = Destination(target, to.catalog_url, to.catalog_password_file, to.blobs,
                     to.s3_endpoint, to.s3_credentials)
    result = checking.check(backup)
    if not result.ok:
        more = f" ({len(result.problems) - 1} more problems)" if len(result.problems) > 1 else ""
        raise InputError(f"the backup in {backup} does not verify: {result.problems[0]}{more}")
    found = manifest.read(backup)
    if Vault.exists(target) or (target / CATALOG_FILE).exists():
        raise VaultError(f"{target} already holds a vault: restore into a new folder.")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise VaultError(f"{target} is not empty: restore into a new folder.")
    keys = _keys_folder(backup, found, keys_from)
    origin = f"backup {backup} at audit entry {found.audit_seq}:{found.audit_hash}"
    check_bucket(to)
    check_catalog(to, origin)
    made = not target.exists()
    try:
        file_modes.make_folder(target)
        return _put_in_place(backup, found, to, keys, passphrase, origin)
    except BaseException:
        if made:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for path in target.iterdir():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def _keys_folder(backup: Path, found: Manifest, keys_from: Path | None) -> Path:
    """Where the keys come from: a folder given (checked against the backup), or the backup."""
    if keys_from is None:
        if not found.keys_included:
            raise InputError(f"the backup in {backup} holds no keys: give the vault's keys "
                             "folder with --keys DIR.")
        return backup / manifest.KEYS
    keys_from = keys_from.expanduser().resolve()
    if not keys_from.is_dir():
        raise InputError(f"{keys_from} is not a folder of keys.")
    held = key_hashes(keys_from)
    for name, digest in found.key_hashes.items():
        if held.get(name) != digest:
            raise InputError(f"the keys in {keys_from} are not the ones the backup was taken "
                             f"with ({name} differs).")
    return keys_from


def _put_in_place(backup: Path, found: Manifest, to: Destination, keys: Path,
                  passphrase: str | None, origin: str) -> Restored:
    target = to.folder
    for path in sorted(keys.iterdir()):
        if path.is_file() and not path.name.endswith((".tmp", ".part")):
            manifest.copy_file(path, target / manifest.KEYS / path.name)
    changed: list[str] = []
    for name in found.files:
        if name in SETTINGS_FILES or name.startswith((f"{REPORTS}/", f"{GATEWAY}/")):
            manifest.copy_file(backup / name, target / name)
    if (target / CONFIG_FILE).is_file():
        changed = keep_folders_inside(target / CONFIG_FILE)
    changed += write_places(target / CONFIG_FILE, to, "restored from a backup")
    for name, entry in sorted(found.volume_entries().items()):
        copied = target / name
        manifest.copy_file(backup / name, copied)
        if entry.sealed:
            copied.chmod(file_modes.READ_ONLY_MODE)
    for name in found.files:
        if name.startswith(f"{manifest.INDEX}/"):
            manifest.copy_file(backup / name, target / name)
    manifest.copy_file(backup / manifest.CATALOG, target / CATALOG_FILE)
    engine = database.sqlite_engine(target / CATALOG_FILE)
    try:
        with engine.begin() as conn:
            catalog.relocate_volumes(conn, {tier: target / manifest.VOLUMES / tier
                                            for tier in TIERS})
        before, _after = vault_format.upgrade(engine, target)
        if to.catalog_url:
            _copy_into_postgresql(engine, to, origin)
    finally:
        engine.dispose()
    if to.catalog_url:
        for path in target.glob(f"{CATALOG_FILE}*"):
            path.unlink()
    ring = open_keyring(target / manifest.KEYS, passphrase)
    if to.s3_credentials is not None:
        store_credentials(target / manifest.KEYS, ring, read_credentials_file(to.s3_credentials))
    chain_key = load_chain_key(target / manifest.KEYS, ring)
    if chain_key is not None:
        # The head file names the backup's last entry: the restored log must hold it, and
        # the next entry (the restore's) chains to it.
        write_head_file(target / HEAD_FILE, chain_key, Head(found.audit_seq, found.audit_hash))
    return Restored(vault=target, backup=backup, messages=found.messages,
                    audit_seq=found.audit_seq, audit_hash=found.audit_hash,
                    format_before=before, keys_from=str(keys), settings_changed=changed,
                    catalog=database.POSTGRESQL if to.catalog_url else "sqlite",
                    blobs=to.blobs)


def _copy_into_postgresql(restored: Engine, to: Destination, origin: str) -> None:
    """The restored catalog (its volumes already pointed at the new folder) copied into the
    empty database ``to`` names; a copy cut short goes on at the next restore of this
    backup."""
    engine = database.open_engine(to.folder / CATALOG_FILE, to.catalog_url,
                                  to.catalog_password_file)
    try:
        catalog_copy.copy_catalog(restored, engine, origin)
    except DBAPIError as exc:
        raise VaultError(f"the catalog could not be copied into {to.catalog_url} "
                         f"({catalog_copy.first_line(exc)}): restore again, it goes on where "
                         "it stopped.") from exc
    finally:
        engine.dispose()


def keep_folders_inside(config: Path, why: str = "restored from a backup") -> list[str]:
    """Comment out the settings that put tiers, the spool or the gateway folder outside the
    vault folder: the restored (or migrated) vault keeps them inside itself. Returns the
    settings changed."""
    changed = comment_out(config, _OUTSIDE_FOLDERS, f"{why}: this vault keeps it inside")
    os.chmod(config, file_modes.FILE_MODE)
    return changed
