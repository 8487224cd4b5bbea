"""Fixtures of the accounts tests: a vault with a small lock-out limit, a known user, and ways
to look at what the vault keeps (every file's bytes, the audit log)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mailvault.accounts import users
from mailvault.accounts.users import UserRecord
from mailvault.store import audit, schema
from mailvault.store.audit import AuditEntry
from mailvault.vault import Vault
from tests.support import catalog_bytes, write_settings

PASSWORD = "correct horse battery staple"
ADMIN = "cli:test-admin"
MAX_FAILED = 3
LOCKOUT_MINUTES = 10


@pytest.fixture
def accounts_vault(vault_path: Path) -> Iterator[Vault]:
    """A new vault whose mailvault.toml sets the lock-out to 3 failures for 10 minutes."""
    Vault.create(vault_path).close()
    write_settings(vault_path, f"[accounts]\nmax_failed_logins = {MAX_FAILED}\n"
                               f"lockout_minutes = {LOCKOUT_MINUTES}\n")
    opened = Vault.open(vault_path)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def alice(accounts_vault: Vault) -> UserRecord:
    """An auditor with one address and the password PASSWORD."""
    return users.add_user(accounts_vault, "alice", ["auditor"], ["Alice@Example.org"],
                          PASSWORD, ADMIN)


def vault_bytes(vault: Vault) -> bytes:
    """Every byte of every file in the vault folder (catalog, its WAL, keys, config...), and
    everything its catalog holds (a PostgreSQL catalog is not in the folder)."""
    files = b"".join(p.read_bytes() for p in sorted(vault.path.rglob("*")) if p.is_file())
    return files + catalog_bytes(vault.path)


def audit_log(vault: Vault) -> list[AuditEntry]:
    """The entries people's actions wrote (not the vault's own: its chain key, settings)."""
    with vault.engine.connect() as conn:
        return [e for e in audit.entries(conn) if e.actor != "mailvault"]


def actions(vault: Vault) -> list[str]:
    return [entry.action for entry in audit_log(vault)]


def user_column(vault: Vault, name: str, column: str) -> object:
    """One column of a user's catalog row, as stored."""
    with vault.engine.connect() as conn:
        return conn.execute(select(schema.users.c[column])
                            .where(schema.users.c.name == name)).scalar_one()
