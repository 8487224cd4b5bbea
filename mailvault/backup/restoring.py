"""Restoring a backup into a new vault folder (``mailvault init --from-backup DIR``).

The backup is checked whole first; nothing is written when it does not verify. The new
vault gets the backup's catalog, settings, reports, volumes and gateway folder (each inside its
own folder, whatever folders the old vault used), and the keys: from the backup when it holds
them, otherwise from a keys folder kept elsewhere, which must be the one the backup was taken
with. The audit head file is written for the backup's last entry, so the chain goes on from
there; the caller opens the vault (which rebuilds the index) and records the restore.

A restore that fails part way removes the folder it made: no half-restored vault is left.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailvault.backup import checking, manifest
from mailvault.backup.manifest import Manifest
from mailvault.backup.taking import GATEWAY, SETTINGS_FILES, key_hashes
from mailvault.compliance.disposition import REPORTS
from mailvault.config import CONFIG_FILE
from mailvault.errors import InputError, VaultError
from mailvault.store import catalog, database, file_modes, vault_format
from mailvault.store.audit_head import HEAD_FILE, Head, write_head_file
from mailvault.store.crypto import load_chain_key, open_keyring
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

    def to_json(self) -> dict[str, Any]:
        return {"vault": str(self.vault), "backup": str(self.backup),
                "messages": self.messages, "audit_head": f"{self.audit_seq}:{self.audit_hash}",
                "format_before": self.format_before, "keys_from": self.keys_from,
                "settings_changed": self.settings_changed}


def restore(backup: Path, target: Path, keys_from: Path | None = None,
            passphrase: str | None = None) -> Restored:
    """Put the backup in ``backup`` in place as a new vault in ``target`` (a new or empty
    folder). The vault is not opened here."""
    backup, target = backup.expanduser().resolve(), target.expanduser().resolve()
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
    made = not target.exists()
    try:
        file_modes.make_folder(target)
        return _put_in_place(backup, found, target, keys, passphrase)
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


def _put_in_place(backup: Path, found: Manifest, target: Path, keys: Path,
                  passphrase: str | None) -> Restored:
    for path in sorted(keys.iterdir()):
        if path.is_file() and not path.name.endswith((".tmp", ".part")):
            manifest.copy_file(path, target / manifest.KEYS / path.name)
    changed: list[str] = []
    for name in found.files:
        if name in SETTINGS_FILES or name.startswith((f"{REPORTS}/", f"{GATEWAY}/")):
            manifest.copy_file(backup / name, target / name)
    if (target / CONFIG_FILE).is_file():
        changed = keep_folders_inside(target / CONFIG_FILE)
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
    finally:
        engine.dispose()
    ring = open_keyring(target / manifest.KEYS, passphrase)
    chain_key = load_chain_key(target / manifest.KEYS, ring)
    if chain_key is not None:
        # The head file names the backup's last entry: the restored log must hold it, and
        # the next entry (the restore's) chains to it.
        write_head_file(target / HEAD_FILE, chain_key, Head(found.audit_seq, found.audit_hash))
    return Restored(vault=target, backup=backup, messages=found.messages,
                    audit_seq=found.audit_seq, audit_hash=found.audit_hash,
                    format_before=before, keys_from=str(keys), settings_changed=changed)


def keep_folders_inside(config: Path, why: str = "restored from a backup") -> list[str]:
    """Comment out the settings that put tiers, the spool or the gateway folder outside the
    vault folder: the restored (or migrated) vault keeps them inside itself. Returns the
    settings changed."""
    section = ""
    lines = []
    changed = []
    for line in config.read_text(encoding="utf-8").splitlines(keepends=True):
        text = line.strip()
        if text.startswith("["):
            section = text.split("]")[0].strip("[ \t")
        key = text.split("=", 1)[0].strip() if "=" in text and not text.startswith("#") else ""
        if key in _OUTSIDE_FOLDERS.get(section, set()):
            lines.append(f"# {why}: this vault keeps it inside. Was: {line}")
            changed.append(f"{section}.{key}")
        else:
            lines.append(line)
    if changed:
        file_modes.write_replacing(config, "".join(lines).encode())
    os.chmod(config, file_modes.FILE_MODE)
    return changed
