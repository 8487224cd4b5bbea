"""A new PostgreSQL database per test, and the password file a vault reads it with."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import postgres


@dataclass(frozen=True)
class Catalog:
    """A new, empty database: its URL (no password in it) and a password file."""

    url: str
    password_file: Path
    name: str


@pytest.fixture
def pg_catalog(postgres_cluster: postgres.Cluster, tmp_path: Path) -> Iterator[Catalog]:
    password_file = tmp_path / "catalog-password"
    password_file.write_text(postgres_cluster.password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    with postgres_cluster.database() as name:
        yield Catalog(postgres_cluster.url(name), password_file, name)


def join(first: Path, to: Path) -> Path:
    """A second node's vault folder: the first one's settings, keys and audit head file
    (docs/postgresql.md, "Several nodes")."""
    to.mkdir(mode=0o700)
    for name in ("mailvault.toml", "audit-head.json"):
        shutil.copy2(first / name, to / name)
    shutil.copytree(first / "keys", to / "keys")
    return to
