"""What the backup tests share: an administrator, messages to archive, reading a vault's
message hashes and file modes without going through the code under test, checking a restored
vault, and the real PostgreSQL and moto fixtures (tests/postgresql, tests/s3_server.py)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.store import audit, catalog
from mailvault.usecases import auditing, monitoring
from mailvault.vault import Vault
from tests import s3_server as moto
from tests.compliance.conftest import archive
from tests.postgresql.conftest import pg_catalog
from tests.support import Attachment, build_message

__all__ = ["pg_catalog"]

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


def archive_in_batches(vault: Vault, raws: list[bytes], size: int = 4) -> None:
    """Archive ``size`` messages at a time: a volume is sealed when a batch ends past its
    size, so batches of four messages of 300 KB fill a 1 MB volume each."""
    for start in range(0, len(raws), size):
        archive(vault, raws[start:start + size])


def by_hash(raws: list[bytes]) -> dict[str, bytes]:
    """Messages by the SHA-256 of their bytes (what a vault names them by)."""
    return {hashlib.sha256(raw).hexdigest(): raw for raw in raws}


def assert_restored(path: Path, expected: dict[str, bytes], backup_seq: int) -> None:
    """The restored vault at ``path`` holds exactly ``expected``, byte for byte, `verify`
    and the audit chain are clean, and the restore is the entry after the backup's last."""
    with Vault.open(path) as again:
        found = monitoring.verify(again, READER)
        assert found.ok, found
        assert auditing.verify_chain(again, READER).ok
        with again.engine.connect() as conn:
            held = {row.sha256: again.read_raw(row) for row in catalog.iter_messages(conn)}
            log = list(audit.entries(conn))
        assert held == expected
        assert log[backup_seq].action == "restore"


@pytest.fixture
def s3_env(s3_server: moto.MotoServer, monkeypatch: pytest.MonkeyPatch) -> moto.MotoServer:
    """moto's keys in the environment (what a vault's commands read), 1 MB objects, and no
    bucket switched on for every vault (MAILVAULT_TEST_BLOBS)."""
    for name, value in moto.KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAILVAULT_STORE_S3_OBJECT_MB", "1")
    monkeypatch.delenv("MAILVAULT_STORE_BLOBS", raising=False)
    monkeypatch.delenv("MAILVAULT_STORE_S3_ENDPOINT", raising=False)
    return s3_server


def s3_store(server: moto.MotoServer, bucket: str) -> dict[str, str]:
    """The [store] settings of a vault whose sealed volumes go to ``bucket``."""
    return {"blobs": f"s3://{bucket}/archive", "s3_endpoint": server.endpoint}
