"""Taking a backup while the vault is in use (``serve`` may keep archiving meanwhile).

The catalog is copied with SQLite's online backup, in one step: a consistent snapshot of
every committed transaction, taken while writers go on (WAL). The snapshot then says what
else to copy: each volume up to the end of the last record it points at (bytes past that are
appends not yet committed, which the snapshot does not know), the settings files and the
disposition reports. The zstd dictionaries live in the catalog and come with it.

Sealed volumes never change (compaction writes new ones and deletes the old), so a backup
into a folder that holds an earlier backup keeps the copies of sealed volumes it already has
and copies only what is new: the open volume, new volumes, the catalog and the small files.
Files the new snapshot no longer names (a compacted volume) are removed from the folder.

The index is derived and left out unless asked for; when it is included, it is copied before
the snapshot, so it never holds a document of a message the snapshot lacks (the index commits
after the catalog). The keyring only with ``include_keys``: keys belong somewhere else than
the archive's backups (docs/backup.md). The gateway folder (docs/gateway.md) when it lives
inside or beside the vault: its mail is sealed to each mailbox's key and each private key is
wrapped by its mailbox's password, so the backup holds nothing readable from it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from mailvault.backup import manifest
from mailvault.backup.manifest import FileEntry, Manifest
from mailvault.capture.users import USERS_FILE
from mailvault.compliance.disposition import REPORTS
from mailvault.config import CONFIG_FILE
from mailvault.errors import InputError, StoreError, VaultError
from mailvault.gateway.segments import TOMBSTONES
from mailvault.store import audit, catalog, database, file_modes, vault_format
from mailvault.store.blobs import volume_path
from mailvault.store.objects import SCHEME

# Settings files copied when the vault has them (paths relative to the vault folder).
SETTINGS_FILES = (CONFIG_FILE, USERS_FILE)
# Where a backup keeps the gateway folder's files, and a restored vault its gateway folder.
GATEWAY = "gateway"
_INDEX_ATTEMPTS = 5


@dataclass
class BackupReport:
    """What one backup holds and what it had to copy this time."""

    folder: Path
    messages: int
    audit_seq: int
    audit_hash: str
    format: int
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    keys_included: bool = False
    index_included: bool = False
    gateway_included: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "messages": self.messages,
                "audit_head": f"{self.audit_seq}:{self.audit_hash}", "format": self.format,
                "copied": self.copied, "kept": self.kept, "removed": self.removed,
                "bytes_copied": self.bytes_copied, "keys_included": self.keys_included,
                "index_included": self.index_included,
                "gateway_included": self.gateway_included}


def take(vault_path: Path, engine: Engine, target: Path, *, include_keys: bool = False,
         include_index: bool = False, gateway: Path | None = None) -> BackupReport:
    """Back the vault at ``vault_path`` (its catalog open as ``engine``) up into ``target``;
    with ``gateway``, that gateway folder's files too (its mail is sealed, its mailboxes'
    private keys wrapped by their passwords: nothing in it is readable without them)."""
    if engine.dialect.name == database.POSTGRESQL:
        raise VaultError("this vault's catalog is in PostgreSQL: back it up with pg_dump "
                         "(mailvault backup copies a SQLite catalog only, for now).")
    target = target.expanduser().resolve()
    if any(place.startswith(SCHEME) for place in catalog.volume_places(engine).values()):
        raise InputError("this vault keeps its blobs in an S3 bucket, which a backup does not "
                         "copy yet: protect the bucket itself (replication, Object Lock).")
    previous = _prepare(vault_path, target)
    files: dict[str, FileEntry] = {}
    report = BackupReport(folder=target, messages=0, audit_seq=0, audit_hash="", format=0,
                          keys_included=include_keys, index_included=include_index)
    if include_index:
        files.update(copy_index(vault_path / manifest.INDEX, target))
    files[manifest.CATALOG] = _snapshot(engine, target / manifest.CATALOG)
    snapshot = create_engine(f"sqlite:///{target / manifest.CATALOG}")
    try:
        report.format = vault_format.format_of(snapshot) or 0
        with snapshot.connect() as conn:
            report.messages = catalog.message_count(conn)
            report.audit_seq, report.audit_hash = audit.head(conn)
            extents = catalog.volume_extents(conn)
    finally:
        snapshot.dispose()
    for volume_id, (tier, folder, used) in sorted(extents.items()):
        if used:
            name = manifest.volume_name(tier, volume_id)
            files[name] = _copy_volume(volume_path(folder, volume_id), target / name, used,
                                       volume_id, tier, previous.get(name), report)
    for name in SETTINGS_FILES:
        if (vault_path / name).is_file():
            files[name] = manifest.copy_file(vault_path / name, target / name)
    for path in sorted((vault_path / REPORTS).glob("*")):
        if path.is_file():
            name = f"{REPORTS}/{path.name}"
            files[name] = manifest.copy_file(path, target / name)
    if include_keys:
        for path in sorted((vault_path / manifest.KEYS).iterdir()):
            if path.is_file() and not path.name.endswith(".tmp"):
                name = f"{manifest.KEYS}/{path.name}"
                files[name] = manifest.copy_file(path, target / name)
    if gateway is not None and gateway.is_dir():
        files.update(_copy_gateway(gateway, target))
        report.gateway_included = True
    report.copied = sorted(set(files) - set(report.kept))
    report.bytes_copied = sum(files[name].size for name in report.copied)
    report.removed = _remove_unlisted(target, files)
    manifest.write(target, Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), vault=str(vault_path),
        format=report.format, audit_seq=report.audit_seq, audit_hash=report.audit_hash,
        messages=report.messages, keys_included=include_keys, index_included=include_index,
        key_hashes=key_hashes(vault_path / manifest.KEYS), files=files))
    _fsync_folder(target)
    return report


def key_hashes(keys: Path) -> dict[str, str]:
    """SHA-256 of the key files a restore compares keys kept elsewhere with."""
    return {name: manifest.hash_file(keys / name).sha256
            for name in manifest.CHECKED_KEY_FILES if (keys / name).is_file()}


def _prepare(vault_path: Path, target: Path) -> dict[str, FileEntry]:
    """Make the backup folder ready; returns the volumes an earlier backup in it holds.

    The earlier manifest is removed first: a backup cut short leaves no manifest, so it can
    never pass for a whole one."""
    if target == vault_path or target.is_relative_to(vault_path):
        raise InputError(f"a backup cannot go inside the vault it backs up ({target}).")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is a file, not a folder for a backup.")
    previous: dict[str, FileEntry] = {}
    if target.is_dir() and any(target.iterdir()):
        if not (target / manifest.MANIFEST_FILE).exists():
            raise InputError(f"{target} is not empty and holds no backup: back up into a new "
                             "folder or one that holds an earlier backup.")
        try:
            previous = manifest.read(target).volume_entries()
        except InputError:
            previous = {}
        (target / manifest.MANIFEST_FILE).unlink()
        _fsync_folder(target)
    file_modes.make_folder(target)
    return previous


def _snapshot(engine: Engine, target: Path) -> FileEntry:
    """The catalog as one consistent snapshot (SQLite's online backup, all pages in one
    step), as a plain (not WAL) database file that reads without leaving files beside it."""
    temporary = target.with_name(target.name + ".part")
    temporary.unlink(missing_ok=True)
    os.close(file_modes.open_new(temporary, os.O_WRONLY))
    copy = sqlite3.connect(temporary)
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        copy.commit()
    except sqlite3.Error as exc:
        raise StoreError(f"the catalog could not be copied: {exc}.") from exc
    finally:
        raw.close()
        copy.close()
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return manifest.hash_file(target)


def _copy_volume(source: Path, target: Path, used: int, volume_id: int, tier: str,
                 earlier: FileEntry | None, report: BackupReport) -> FileEntry:
    """A volume up to ``used`` bytes, or the copy an earlier backup made of it when the
    volume was sealed then and the copy is still whole."""
    try:
        sealed = not source.stat().st_mode & stat.S_IWUSR
    except FileNotFoundError:
        raise StoreError(f"volume {volume_id} ({source}) disappeared while the backup ran "
                         "(a compaction): run the backup again.") from None
    if (earlier is not None and earlier.sealed and sealed and earlier.size == used
            and target.is_file() and target.stat().st_size == used):
        report.kept.append(str(target.relative_to(report.folder)))
        return earlier
    copied = manifest.copy_file(source, target, used)
    return FileEntry(size=copied.size, sha256=copied.sha256, volume=volume_id, tier=tier,
                     sealed=sealed)


def copy_index(index: Path, target: Path) -> dict[str, FileEntry]:
    """The index folder's files, copied again until Tantivy's meta.json did not change
    meanwhile (a running serve commits and merges while it is copied)."""
    meta = index / "meta.json"
    for _attempt in range(_INDEX_ATTEMPTS):
        before = meta.read_bytes() if meta.exists() else b""
        files: dict[str, FileEntry] = {}
        try:
            for path in sorted(index.rglob("*")):
                if path.is_file() and not path.name.endswith(".lock"):
                    name = f"{manifest.INDEX}/{path.relative_to(index)}"
                    files[name] = manifest.copy_file(path, target / name)
        except FileNotFoundError:
            continue
        if (meta.read_bytes() if meta.exists() else b"") == before:
            return files
    raise StoreError("the index kept changing while it was copied: back up without "
                     "--include-index (a restore rebuilds the index from the catalog).")


def _copy_gateway(gateway: Path, target: Path) -> dict[str, FileEntry]:
    """The gateway folder's files, in use: each mailbox's tombstones before its segments, so
    a compaction meanwhile can only leave the copy with a deleted message's tombstone too
    (never a deleted message without it); a segment's record being appended is cut short in
    the copy and passed over when read. Lock and temporary files are left out."""
    files: dict[str, FileEntry] = {}
    paths = sorted(gateway.rglob("*"), key=lambda p: (p.parent, p.name != TOMBSTONES, p.name))
    for path in paths:
        if path.name == "lock" or path.name.endswith((".tmp", ".part")):
            continue
        name = f"{GATEWAY}/{path.relative_to(gateway)}"
        try:
            if path.is_file():
                files[name] = manifest.copy_file(path, target / name)
        except FileNotFoundError:
            continue  # deleted meanwhile (a pulled message, a compacted segment)
    return files


def _remove_unlisted(target: Path, files: dict[str, FileEntry]) -> list[str]:
    """Delete what an earlier backup left that this one does not hold."""
    removed = []
    for path in sorted(target.rglob("*"), reverse=True):
        name = str(path.relative_to(target))
        if path.is_file() and name not in files and name != manifest.MANIFEST_FILE:
            path.unlink()
            removed.append(name)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return sorted(removed)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
