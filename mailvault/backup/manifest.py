"""A backup's manifest (``DIR/backup.json``): what the backup holds and the SHA-256 of each file.

The manifest is written last, after every file it lists is fsynced; a backup that was cut
short has none (it is removed when a new backup into the folder starts), so it cannot pass
for a whole one. It carries a digest over its own content: a flipped byte in it is caught
like one in any file it lists.

    DIR/backup.json                   this manifest
    DIR/catalog.sqlite                the catalog at the snapshot (SQLite's online backup,
                                      or a PostgreSQL catalog copied in one snapshot)
    DIR/mailvault.toml, smtp-users.json, reports/...   settings and disposition reports
    DIR/volumes/<tier>/NNNNNNNN.vol   each volume up to the length the snapshot uses (an
                                      uploaded volume: its object, whole)
    DIR/backup-progress.jsonl         only while a backup runs (backup/journal.py)
    DIR/keys/...                      only with --include-keys
    DIR/index/...                     only with --include-index
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mailvault.errors import InputError, StorageFullError
from mailvault.store import file_modes
from mailvault.store.blobs import volume_path

MANIFEST_FILE = "backup.json"
# The layout of the backup folder itself (not the vault's format, which it records too).
BACKUP_LAYOUT = 1
CATALOG = "catalog.sqlite"
VOLUMES = "volumes"
KEYS = "keys"
INDEX = "index"
# The key files whose hashes let a restore check that keys kept elsewhere are this vault's
# (master.key is checked by unlocking the keyring instead).
CHECKED_KEY_FILES = ("keyring.json", "audit-chain.key")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    """One file of a backup: its size and SHA-256; for a volume, its id, tier and whether the
    vault had sealed it (a sealed volume never changes, so a later backup keeps its copy)."""

    size: int
    sha256: str
    volume: int | None = None
    tier: str | None = None
    sealed: bool = False


@dataclass
class Manifest:
    """What a backup holds; ``files`` maps a path inside the backup folder to its entry."""

    created_at: str
    vault: str
    format: int
    audit_seq: int
    audit_hash: str
    messages: int
    keys_included: bool
    index_included: bool
    key_hashes: dict[str, str] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    # Where the vault kept its catalog ("sqlite" or "postgresql") and its sealed volumes
    # ("" for local volumes, else the bucket's s3:// location): the backup holds both as
    # files either way, and says what they came from.
    catalog: str = "sqlite"
    blobs: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = {name: {k: v for k, v in asdict(entry).items() if v is not None}
                         for name, entry in sorted(self.files.items())}
        data["layout"] = BACKUP_LAYOUT
        return data

    def volume_entries(self) -> dict[str, FileEntry]:
        """The volume files, by path in the backup."""
        return {name: entry for name, entry in self.files.items() if entry.volume is not None}


def volume_name(tier: str, volume_id: int) -> str:
    """Where a volume's copy sits in a backup folder."""
    return f"{VOLUMES}/{tier}/{volume_path(Path(), volume_id).name}"


def write(folder: Path, manifest: Manifest) -> None:
    """Write the manifest (owner-only, fsynced, renamed into place) with its digest."""
    data = manifest.to_json()
    data["digest"] = _digest(data)
    try:
        file_modes.write_replacing(folder / MANIFEST_FILE,
                                   json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError as exc:
        if is_full(exc):
            raise disk_full(folder) from exc
        raise


def read(folder: Path) -> Manifest:
    """The manifest of the backup in ``folder``; InputError in one sentence when there is
    none or it was altered."""
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{folder} holds no backup manifest ({MANIFEST_FILE}): it is not a "
                         "backup, or the backup was cut short.") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"the backup manifest {path} cannot be read ({exc}).") from exc
    if not isinstance(data, dict) or data.pop("digest", None) != _digest(data):
        raise InputError(f"the backup manifest {path} was altered: its digest does not match.")
    if data.get("layout") != BACKUP_LAYOUT:
        raise InputError(f"the backup in {folder} has layout {data.get('layout')}, which this "
                         "release does not read.")
    try:
        files = {name: FileEntry(**entry) for name, entry in data["files"].items()}
        for name in files:
            # A restore writes each file at its name inside the new vault.
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise InputError(f"the backup manifest {path} names a file outside the "
                                 f"backup ({name!r}).")
        return Manifest(created_at=data["created_at"], vault=data["vault"],
                        format=int(data["format"]), audit_seq=int(data["audit_seq"]),
                        audit_hash=data["audit_hash"], messages=int(data["messages"]),
                        keys_included=bool(data["keys_included"]),
                        index_included=bool(data["index_included"]),
                        key_hashes=dict(data["key_hashes"]), files=files,
                        catalog=str(data.get("catalog", "sqlite")),
                        blobs=str(data.get("blobs", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the backup manifest {path} is incomplete ({exc}).") from exc


def hash_file(path: Path) -> FileEntry:
    """Size and SHA-256 of a file, read in 1 MB pieces."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while piece := handle.read(_CHUNK):
            digest.update(piece)
            size += len(piece)
    return FileEntry(size=size, sha256=digest.hexdigest())


def copy_file(source: Path, target: Path, length: int | None = None) -> FileEntry:
    """Copy ``source`` (its first ``length`` bytes, or all of it) to ``target``, owner-only,
    fsynced; returns the copy's size and SHA-256, computed while copying."""
    copied = write_pieces(target, _pieces(source, length))
    if length is not None and copied.size < length:
        target.unlink(missing_ok=True)
        raise InputError(f"{source} ends at byte {copied.size}, before the {length} bytes the "
                         "catalog uses.")
    return copied


def write_pieces(target: Path, pieces: Iterable[bytes]) -> FileEntry:
    """Write ``pieces`` to ``target`` (a temporary file fsynced and renamed into place,
    owner-only); returns its size and SHA-256, computed while writing. A full disk is
    StorageFullError in one sentence; a failure of any kind leaves no temporary file, and
    ``target`` as it was."""
    temporary = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        file_modes.make_folder(target.parent)
        fd = file_modes.open_new(temporary, os.O_WRONLY | os.O_TRUNC)
        try:
            for piece in pieces:
                digest.update(piece)
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view):]
                size += len(piece)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException as exc:
        # Nothing half-written is left (a source that failed part way, a full disk).
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_full(exc):
            raise disk_full(target.parent) from exc
        raise
    return FileEntry(size=size, sha256=digest.hexdigest())


def is_full(error: OSError) -> bool:
    """Whether a write failed for want of space (or of quota)."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full(folder: Path) -> StorageFullError:
    """The one sentence for a backup that ran out of space writing into ``folder``."""
    return StorageFullError(f"the disk of the backup folder {folder} is full: free some space "
                            "and run the backup again (what was copied is kept).")


def _pieces(source: Path, length: int | None) -> Iterator[bytes]:
    """A file's bytes (its first ``length``, or all) in 1 MB pieces."""
    size = 0
    with open(source, "rb") as handle:
        while length is None or size < length:
            piece = handle.read(_CHUNK if length is None else min(_CHUNK, length - size))
            if not piece:
                return
            size += len(piece)
            yield piece


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()
