"""What the backup tests share: an administrator, messages to archive, and reading a vault's
message hashes and file modes without going through the code under test."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from tests.support import Attachment, build_message

ADMIN = Principal(name="admin-test", roles=frozenset({Role.ADMIN}))
# Checking what was restored: the counts and searches an auditor may run.
READER = Principal(name="reader", roles=frozenset({Role.ADMIN, Role.AUDITOR}))


def messages(count: int, tag: str, attachment_bytes: int = 0) -> list[bytes]:
    """``count`` distinct messages; with ``attachment_bytes``, each carries that many random
    (incompressible) bytes, to fill volumes."""
    return [build_message(subject=f"{tag} {i}", body=f"{tag} body {i}\n",
                          attachments=[Attachment("data.bin", os.urandom(attachment_bytes))]
                          if attachment_bytes else ())
            for i in range(count)]


def catalog_hashes(catalog: Path) -> set[str]:
    """The SHA-256 of every message a catalog file holds (read with sqlite3 directly)."""
    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT sha256 FROM messages")}


def loose_modes(root: Path) -> list[str]:
    """Files and folders under ``root`` that anyone but the owner may use."""
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077 or (path.is_dir() and mode != 0o700):
            loose.append(f"{path.relative_to(root)} {mode:o}")
    return loose
