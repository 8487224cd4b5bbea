"""Taking a backup while the vault is in use (``serve`` may keep archiving meanwhile).

The catalog is copied as one consistent snapshot of every committed transaction, taken while
writers go on: a SQLite catalog with SQLite's online backup, in one step; a PostgreSQL catalog
read through one connection in one REPEATABLE READ, read-only transaction and written into a
SQLite file by store/catalog_copy.py (the copier ``migrate`` uses), so that every backup holds
its catalog in the same form, checkable and restorable without a database server. The
snapshot then says what else to copy: each local volume up to the end of the last record it
points at (bytes past that are appends not yet committed, which the snapshot does not know),
each volume uploaded to the vault's bucket as its object, whole (docs/s3.md), the settings
files and the disposition reports. The zstd dictionaries live in the catalog and come with it.

Sealed volumes never change (compaction writes new ones and deletes the old) and neither do
objects (their key names their bytes' SHA-256, and Object Lock keeps them), so a backup into a
folder that holds an earlier backup keeps the copies of sealed volumes and objects it already
has and copies only what is new: the open volumes, new volumes and objects, the catalog and
the small files. Files the new snapshot no longer names (a compacted volume) are removed from
the folder. A backup cut short (a kill, a full disk) leaves a journal of what it copied
(backup/journal.py) and no manifest; the next run into the folder keeps those copies too.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError

from mailvault.backup import journal, manifest
from mailvault.backup.manifest import FileEntry, Manifest
from mailvault.capture.users import USERS_FILE
from mailvault.compliance.disposition import REPORTS
from mailvault.config import CONFIG_FILE
from mailvault.errors import InputError, IntegrityError, StoreError, VaultError
from mailvault.gateway.segments import TOMBSTONES
from mailvault.store import audit, catalog, catalog_copy, database, file_modes, vault_format
from mailvault.store.blobs import volume_path
from mailvault.store.objects import SCHEME, Bucket, Objects

# Settings files copied when the vault has them (paths relative to the vault folder).
SETTINGS_FILES = (CONFIG_FILE, USERS_FILE)
# Where a backup keeps the gateway folder's files, and a restored vault its gateway folder.
GATEWAY = "gateway"
_INDEX_ATTEMPTS = 5
# What the catalog copy of a backup is recorded as coming from while it is made.
_SNAPSHOT_ORIGIN = "backup snapshot"
# Told what was copied: a file's name in the backup (a catalog table as
# "catalog.sqlite:TABLE") and how many bytes (rows, for a table).
Progress = Callable[[str, int], None]


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
    catalog: str = "sqlite"
    blobs: str = ""
    objects_copied: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "messages": self.messages,
                "audit_head": f"{self.audit_seq}:{self.audit_hash}", "format": self.format,
                "copied": self.copied, "kept": self.kept, "removed": self.removed,
                "bytes_copied": self.bytes_copied, "keys_included": self.keys_included,
                "index_included": self.index_included,
                "gateway_included": self.gateway_included, "catalog": self.catalog,
                "blobs": self.blobs, "objects_copied": self.objects_copied}


@dataclass
class _Run:
    """One backup run: the folder it writes, the live catalog (where a volume is now), what
    an earlier run left that may be kept, the vault's bucket, and who is told of progress."""

    folder: Path
    engine: Engine
    report: BackupReport
    previous: dict[str, FileEntry]
    objects: Objects | None
    progress: Progress | None

    def kept(self, name: str, entry: FileEntry) -> FileEntry:
        self.report.kept.append(name)
        return entry

    def copied(self, name: str, entry: FileEntry) -> FileEntry:
        """Record a new copy: a sealed one in the journal, so a later run keeps it."""
        if entry.sealed:
            journal.add(self.folder, name, entry)
        if self.progress is not None:
            self.progress(name, entry.size)
        return entry


def take(vault_path: Path, engine: Engine, target: Path, *, include_keys: bool = False,
         include_index: bool = False, gateway: Path | None = None,
         objects: Objects | None = None, progress: Progress | None = None) -> BackupReport:
    """Back the vault at ``vault_path`` (its catalog open as ``engine``) up into ``target``;
    ``objects`` is the vault's bucket when its volumes are uploaded there; with ``gateway``,
    that gateway folder's files too (its mail is sealed, its mailboxes' private keys wrapped
    by their passwords: nothing in it is readable without them)."""
    target = target.expanduser().resolve()
    if objects is None and any(place.startswith(SCHEME)
                               for place in catalog.volume_places(engine).values()):
        raise InputError("this vault's catalog names volumes in an S3 bucket, and no bucket "
                         "is set to read them from ([store] blobs).")
    if engine.dialect.name == database.POSTGRESQL:
        found = vault_format.format_of(engine)
        if found != vault_format.FORMAT_VERSION:
            # The copier knows this release's tables only (upgrade --backup-to meets this).
            raise VaultError(f"this vault's catalog in PostgreSQL is of format {found}: only "
                             f"one of this release's format ({vault_format.FORMAT_VERSION}) is "
                             "backed up; back it up with the release that wrote it (or "
                             "pg_dump), then upgrade with --no-backup.")
    previous = _prepare(vault_path, target)
    files: dict[str, FileEntry] = {}
    report = BackupReport(folder=target, messages=0, audit_seq=0, audit_hash="", format=0,
                          keys_included=include_keys, index_included=include_index,
                          catalog=engine.dialect.name,
                          blobs=objects.bucket.url(objects.bucket.prefix) if objects else "")
    run = _Run(target, engine, report, previous, objects, progress)
    if include_index:
        files.update(copy_index(vault_path / manifest.INDEX, target))
    files[manifest.CATALOG] = snapshot(engine, target / manifest.CATALOG, progress)
    copy = create_engine(f"sqlite:///{target / manifest.CATALOG}")
    try:
        report.format = vault_format.format_of(copy) or 0
        with copy.connect() as conn:
            report.messages = catalog.message_count(conn)
            report.audit_seq, report.audit_hash = audit.head(conn)
            extents = catalog.volume_extents(conn)
        places = catalog.volume_places(copy)
    finally:
        copy.dispose()
    for volume_id, (tier, _folder, used) in sorted(extents.items()):
        if used:
            name = manifest.volume_name(tier, volume_id)
            files[name] = _copy_volume(run, name, volume_id, tier, places[volume_id], used)
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
        key_hashes=key_hashes(vault_path / manifest.KEYS), files=files,
        catalog=report.catalog, blobs=report.blobs))
    journal.finish(target)
    return report


def key_hashes(keys: Path) -> dict[str, str]:
    """SHA-256 of the key files a restore compares keys kept elsewhere with."""
    return {name: manifest.hash_file(keys / name).sha256
            for name in manifest.CHECKED_KEY_FILES if (keys / name).is_file()}


def _prepare(vault_path: Path, target: Path) -> dict[str, FileEntry]:
    """Make the backup folder ready; returns the sealed copies an earlier backup (or an
    earlier run cut short) left in it.

    The earlier manifest becomes the journal first and is then removed: a backup cut short
    leaves no manifest, so it can never pass for a whole one, and its journal lets the next
    run keep what it had copied."""
    if target == vault_path or target.is_relative_to(vault_path):
        raise InputError(f"a backup cannot go inside the vault it backs up ({target}).")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is a file, not a folder for a backup.")
    previous: dict[str, FileEntry] = {}
    if target.is_dir() and any(target.iterdir()):
        if (target / manifest.MANIFEST_FILE).exists():
            try:
                previous = {name: entry for name, entry
                            in manifest.read(target).volume_entries().items() if entry.sealed}
            except InputError:
                previous = {}
            journal.start(target, previous)
            (target / manifest.MANIFEST_FILE).unlink()
            file_modes.fsync_folder(target)
            return previous
        if not journal.exists(target):
            raise InputError(f"{target} is not empty and holds no backup: back up into a new "
                             "folder or one that holds an earlier backup.")
        # Written again whole: a line a kill cut short must not run into the next one.
        previous = journal.read(target)
        journal.start(target, previous)
        return previous
    file_modes.make_folder(target)
    journal.start(target, {})
    return previous


def snapshot(engine: Engine, target: Path, progress: Progress | None = None) -> FileEntry:
    """The catalog at one moment, as a plain (not WAL) SQLite file at ``target``: SQLite's
    online backup of a SQLite catalog, a one-transaction copy of a PostgreSQL one."""
    if engine.dialect.name == database.POSTGRESQL:
        return _postgresql_snapshot(engine, target, progress)
    return _snapshot(engine, target)


def _postgresql_snapshot(engine: Engine, target: Path, progress: Progress | None) -> FileEntry:
    """Every table read through one connection in one REPEATABLE READ, read-only
    transaction: each statement sees the database as it was at the first, whatever is
    committed meanwhile. The copy is made from scratch each time (a copy cut short holds
    an older snapshot, which no later one may be mixed with)."""
    temporary = target.with_name(target.name + ".part")
    temporary.unlink(missing_ok=True)
    os.close(file_modes.open_new(temporary, os.O_WRONLY))
    copy = _plain_sqlite(temporary)

    def tables(table: str, rows: int) -> None:
        if progress is not None:
            progress(f"{manifest.CATALOG}:{table}", rows)

    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                catalog_copy.copy_catalog(conn, copy, _SNAPSHOT_ORIGIN, progress=tables)
    except DBAPIError as exc:
        if database.is_disk_full(exc.orig):
            raise manifest.disk_full(target.parent) from exc
        raise StoreError("the catalog database could not be read to the end of the backup's "
                         f"snapshot ({catalog_copy.first_line(exc)}): run the backup "
                         "again.") from exc
    finally:
        copy.dispose()
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return manifest.hash_file(target)


def _plain_sqlite(path: Path) -> Engine:
    """The backup's catalog file as it is written: no WAL (it reads with no files beside
    it), no fsync per chunk (a copy cut short is made again; the file is fsynced whole)."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    return engine


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
        if database.is_disk_full(exc):
            raise manifest.disk_full(target.parent) from exc
        raise StoreError(f"the catalog could not be copied: {exc}.") from exc
    finally:
        raw.close()
        copy.close()
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return manifest.hash_file(target)


def _copy_volume(run: _Run, name: str, volume_id: int, tier: str, place: str,
                 used: int) -> FileEntry:
    """A volume the snapshot uses: its object, or its local file up to ``used`` bytes (or
    the copy an earlier run made of it, when that is still whole and the volume sealed)."""
    if place.startswith(SCHEME):
        return _copy_object(run, name, volume_id, tier, place)
    source = volume_path(Path(place), volume_id)
    try:
        return _copy_local(run, name, volume_id, tier, source, used)
    except FileNotFoundError:
        # Uploaded since the snapshot? Its local file goes once the bucket has it.
        now = catalog.volume_places(run.engine).get(volume_id, "")
        if now.startswith(SCHEME):
            return _copy_object(run, name, volume_id, tier, now)
        raise StoreError(f"volume {volume_id} is not in {source.parent}: compacted away while "
                         "the backup ran, or another node's volume not uploaded yet; run the "
                         "backup again.") from None


def _copy_local(run: _Run, name: str, volume_id: int, tier: str, source: Path,
                used: int) -> FileEntry:
    sealed = not source.stat().st_mode & stat.S_IWUSR
    earlier = run.previous.get(name)
    target = run.folder / name
    if (earlier is not None and earlier.sealed and sealed and earlier.size == used
            and target.is_file() and target.stat().st_size == used):
        return run.kept(name, earlier)
    copied = manifest.copy_file(source, target, used)
    return run.copied(name, FileEntry(size=copied.size, sha256=copied.sha256,
                                      volume=volume_id, tier=tier, sealed=sealed))


def _copy_object(run: _Run, name: str, volume_id: int, tier: str, url: str) -> FileEntry:
    """An uploaded volume's object, whole, checked against the SHA-256 its key names; kept
    from an earlier run when that copy has the same bytes (an object never changes)."""
    if run.objects is None:
        raise InputError(f"volume {volume_id} is in a bucket ({url}), and no bucket is set "
                         "to read it from ([store] blobs).")
    key = run.objects.bucket.key_of(url)
    digest = Bucket.digest_of(key)
    earlier = run.previous.get(name)
    target = run.folder / name
    if (earlier is not None and earlier.sealed and digest and earlier.sha256.startswith(digest)
            and target.is_file() and target.stat().st_size == earlier.size):
        return run.kept(name, earlier)
    copied = manifest.write_pieces(target, run.objects.pieces(key))
    if digest and not copied.sha256.startswith(digest):
        target.unlink(missing_ok=True)
        raise IntegrityError(f"the object {key} of volume {volume_id} does not match the "
                             "SHA-256 its key names: the bucket sent other bytes than were "
                             "uploaded.")
    run.report.objects_copied += 1
    return run.copied(name, FileEntry(size=copied.size, sha256=copied.sha256,
                                      volume=volume_id, tier=tier, sealed=True))


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
        if path.is_file() and name not in files and \
                name not in (manifest.MANIFEST_FILE, journal.JOURNAL_FILE):
            path.unlink()
            removed.append(name)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return sorted(removed)
