"""Checking a backup on its own, without the vault it came from (``backup verify``).

Every file the manifest lists must be there with its size and SHA-256; the catalog copy must
pass SQLite's integrity check, be of a format this release reads, and agree with the manifest
(message count, audit head); every volume the catalog points into must be in the backup, at
least as long as the catalog uses. A flipped byte anywhere (a volume, the catalog, the
manifest itself) is reported.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from mailvault.backup import manifest
from mailvault.backup.manifest import Manifest
from mailvault.errors import InputError, VaultError
from mailvault.store import audit, catalog, vault_format


@dataclass
class BackupCheck:
    """The result of checking a backup: what it holds, and every problem found."""

    folder: Path
    files: int = 0
    bytes: int = 0
    messages: int = 0
    audit_seq: int = 0
    format: int = 0
    created_at: str = ""
    keys_included: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "ok": self.ok, "files": self.files,
                "bytes": self.bytes, "messages": self.messages, "audit_seq": self.audit_seq,
                "format": self.format, "created_at": self.created_at,
                "keys_included": self.keys_included, "problems": self.problems}


def check(folder: Path) -> BackupCheck:
    """Check the backup in ``folder``; the problems say what is wrong, one sentence each."""
    folder = folder.expanduser().resolve()
    result = BackupCheck(folder=folder)
    try:
        found = manifest.read(folder)
    except InputError as exc:
        result.problems.append(str(exc))
        return result
    result.files, result.messages, result.audit_seq = (len(found.files), found.messages,
                                                      found.audit_seq)
    result.format, result.created_at = found.format, found.created_at
    result.keys_included = found.keys_included
    result.bytes = sum(entry.size for entry in found.files.values())
    for name, entry in sorted(found.files.items()):
        path = folder / name
        if not path.is_file():
            result.problems.append(f"{name} is missing from the backup.")
            continue
        held = manifest.hash_file(path)
        if held.size != entry.size:
            result.problems.append(f"{name} is {held.size} bytes, not the {entry.size} the "
                                   "manifest lists.")
        elif held.sha256 != entry.sha256:
            result.problems.append(f"{name} does not match its SHA-256: its bytes changed.")
    if manifest.CATALOG not in found.files:
        result.problems.append("the manifest lists no catalog.")
    elif (folder / manifest.CATALOG).is_file():
        result.problems.extend(_catalog_problems(folder, found))
    if found.keys_included:
        for name in manifest.CHECKED_KEY_FILES:
            if f"{manifest.KEYS}/{name}" not in found.files:
                result.problems.append(f"the backup says it holds the keys but lacks {name}.")
    return result


def _catalog_problems(folder: Path, found: Manifest) -> list[str]:
    path = folder / manifest.CATALOG
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            verdict = db.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.Error as exc:
        return [f"the catalog copy cannot be read: {exc}."]
    if not verdict or verdict[0] != "ok":
        return [f"the catalog copy is damaged: {verdict[0] if verdict else 'no answer'}."]
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    problems = []
    try:
        form = vault_format.format_of(engine) or 0
        if form > vault_format.FORMAT_VERSION:
            problems.append(f"the backup is of vault format {form}, newer than this release "
                            f"reads ({vault_format.FORMAT_VERSION}).")
            return problems
        with engine.connect() as conn:
            messages = catalog.message_count(conn)
            seq, digest = audit.head(conn)
            extents = catalog.volume_extents(conn)
    except (SQLAlchemyError, VaultError) as exc:
        return [f"the catalog copy cannot be read: {exc}."]
    finally:
        engine.dispose()
    if messages != found.messages:
        problems.append(f"the catalog copy holds {messages} messages, the manifest says "
                        f"{found.messages}.")
    if (seq, digest) != (found.audit_seq, found.audit_hash):
        problems.append(f"the catalog copy's audit log ends at entry {seq}, the manifest "
                        f"names entry {found.audit_seq}.")
    for volume_id, (tier, _folder, used) in sorted(extents.items()):
        if not used:
            continue
        name = manifest.volume_name(tier, volume_id)
        entry = found.files.get(name)
        if entry is None:
            problems.append(f"volume {volume_id}, which the catalog uses, is not in the backup.")
        elif entry.size < used:
            problems.append(f"volume {volume_id} is {entry.size} bytes in the backup, but the "
                            f"catalog uses {used}.")
    return problems
