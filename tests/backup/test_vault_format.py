"""The vault's format: every fixture vault a release wrote opens and upgrades; a vault made
before formats were recorded is refused until `upgrade`; a newer one is refused untouched; the
migrations make exactly the tables the code declares."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from mailvault.errors import InputError, VaultError
from mailvault.store import audit, schema, vault_format
from mailvault.usecases import auditing, backups, finding, monitoring
from mailvault.vault import CATALOG_FILE, Vault
from tests.backup.conftest import ADMIN, READER
from tests.fixtures.make_vault_fixture import HERE, MESSAGES, PLACEHOLDER
from tests.support import invoke

FIXTURES = sorted(HERE.glob("vault-format-*"))


def copy_fixture(fixture: Path, to: Path) -> Path:
    """A copy of a fixture vault whose catalog names the copy's own volume folders."""
    shutil.copytree(fixture, to)
    with sqlite3.connect(to / CATALOG_FILE) as db:
        db.execute("UPDATE volumes SET folder = replace(folder, ?, ?)", (PLACEHOLDER, str(to)))
    db.close()
    return to


def test_there_is_a_fixture_of_the_current_format() -> None:
    assert HERE / f"vault-format-{vault_format.FORMAT_VERSION}" in FIXTURES


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: path.name)
def test_every_fixture_vault_opens_and_upgrades(fixture: Path, tmp_path: Path) -> None:
    path = copy_fixture(fixture, tmp_path / "vault")

    upgraded = backups.upgrade(ADMIN, path, tmp_path / "before-upgrade")

    assert upgraded.after == vault_format.FORMAT_VERSION
    with Vault.open(path) as vault:
        assert monitoring.verify(vault, READER).ok
        assert auditing.verify_chain(vault, READER).ok
        assert finding.count(vault, READER, "") == MESSAGES
        assert finding.count(vault, READER, "subject:quarterly") == 2
        with vault.engine.connect() as conn:
            entry = audit.last(conn, "upgrade")
        if upgraded.before < upgraded.after:
            assert entry is not None and entry.detail["from_format"] == upgraded.before
        else:
            assert entry is None


def test_a_vault_made_before_formats_is_refused_until_upgraded(tmp_path: Path) -> None:
    path = copy_fixture(HERE / "vault-format-1", tmp_path / "vault")
    # What a release before versioned formats left: no revision, and (older still) an index
    # it did not make yet.
    with sqlite3.connect(path / CATALOG_FILE) as db:
        db.execute("DROP TABLE alembic_version")
        db.execute("DROP INDEX audit_log_action")
    db.close()

    with pytest.raises(VaultError, match=r"format 0, written by an older release; run "
                                         r"'mailvault upgrade'"):
        Vault.open(path)
    with pytest.raises(InputError, match="--backup-to DIR, or say --no-backup"):
        invoke("upgrade", "--vault", path)

    upgraded = invoke("upgrade", "--vault", path, "--backup-to", tmp_path / "backup")

    assert upgraded.exit_code == 0, upgraded.stdout
    assert f"from format 0 to {vault_format.FORMAT_VERSION}" in upgraded.text
    assert backups.check_backup(ADMIN, tmp_path / "backup").ok
    engine = create_engine(f"sqlite:///{path / CATALOG_FILE}")
    with engine.connect() as conn:
        assert "audit_log_action" in {i["name"] for i in inspect(conn).get_indexes("audit_log")}
    engine.dispose()
    with Vault.open(path) as vault:
        assert monitoring.verify(vault, READER).ok
        assert auditing.verify_chain(vault, READER).ok
        with vault.engine.connect() as conn:
            entry = audit.last(conn, "upgrade")
        assert entry is not None
        assert entry.detail == {"from_format": 0, "to_format": vault_format.FORMAT_VERSION,
                                "backup": str(tmp_path / "backup")}
    # The backup taken first is of the vault as it was: it restores, and the restore upgrades.
    backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored",
                    keys_from=path / "keys")
    with Vault.open(tmp_path / "restored") as restored:
        assert finding.count(restored, READER, "") == MESSAGES


def test_a_newer_vault_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = copy_fixture(HERE / "vault-format-1", tmp_path / "vault")
    with sqlite3.connect(path / CATALOG_FILE) as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
    db.close()
    before = hashlib.sha256((path / CATALOG_FILE).read_bytes()).hexdigest()
    head_file = (path / "audit-head.json").read_bytes()

    with pytest.raises(VaultError, match="format 99, newer than this release reads"):
        Vault.open(path)
    with pytest.raises(VaultError, match="newer than this release reads"):
        backups.upgrade(ADMIN, path, None)

    assert hashlib.sha256((path / CATALOG_FILE).read_bytes()).hexdigest() == before
    assert (path / "audit-head.json").read_bytes() == head_file
    assert not (path / "index").exists()


def test_the_migrations_make_the_tables_the_code_declares(tmp_path: Path) -> None:
    assert vault_format.head_revision() == vault_format.HEAD_REVISION
    for name, prepare in (("empty", None), ("format-0", schema.metadata.create_all)):
        engine = create_engine(f"sqlite:///{tmp_path / name}.sqlite")
        if prepare is not None:
            prepare(engine)
        with engine.begin() as conn:
            command.upgrade(vault_format.alembic_config(conn), "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        assert vault_format.format_of(engine) == vault_format.FORMAT_VERSION
        engine.dispose()


def test_format_5_changes_no_table_of_a_sqlite_catalog(tmp_path: Path) -> None:
    """Format 5 widens integers on PostgreSQL only: SQLite's INTEGER is 64-bit already, and a
    table altered there would be copied whole (tests/postgresql/test_wide_integers.py)."""
    path = copy_fixture(HERE / "vault-format-4", tmp_path / "vault")

    def tables() -> list[tuple[str, str]]:
        with sqlite3.connect(path / CATALOG_FILE) as db:
            found = db.execute("SELECT name, sql FROM sqlite_master "
                               "WHERE name != 'alembic_version' ORDER BY name").fetchall()
        db.close()
        return found

    before = tables()
    engine = create_engine(f"sqlite:///{path / CATALOG_FILE}")
    with engine.begin() as conn:
        command.upgrade(vault_format.alembic_config(conn), "0005")
    engine.dispose()
    assert tables() == before


def test_format_6_makes_the_reindex_queue_a_log_above_every_marker(tmp_path: Path) -> None:
    """The queued messages become log entries numbered above the old generation (with room
    for a marker that ran ahead of it), and the old generation the floor: a marker at it
    applies them, one behind it rebuilds."""
    path = copy_fixture(HERE / "vault-format-5", tmp_path / "vault")
    with sqlite3.connect(path / CATALOG_FILE) as db:
        db.execute("INSERT INTO reindex_queue VALUES (4), (2)")
        db.execute("INSERT OR REPLACE INTO index_state VALUES ('reindex_generation', 7)")
    db.close()

    engine = create_engine(f"sqlite:///{path / CATALOG_FILE}")
    with engine.begin() as conn:  # the migration alone: `upgrade` opens the vault, which heals
        command.upgrade(vault_format.alembic_config(conn), "head")
    engine.dispose()

    def log() -> tuple[list[tuple[int, int]], dict[str, int]]:
        with sqlite3.connect(path / CATALOG_FILE) as db:
            entries = db.execute("SELECT seq, message_id FROM reindex_log ORDER BY seq")
            state = db.execute("SELECT name, value FROM index_state")
            found = entries.fetchall(), dict(state.fetchall())
        db.close()
        return found

    slack = 1 << 20
    entries, state = log()
    assert entries == [(7 + slack + 1, 2), (7 + slack + 2, 4)]
    assert (state["reindex_floor"], state["reindex_seq"]) == (7, 7 + slack + 2)
    assert "reindex_generation" not in state
    with Vault.open(path) as vault:
        assert finding.count(vault, READER, "") == MESSAGES
    # The one index applied them (a new folder: by writing every document), and they went.
    entries, state = log()
    assert entries == []
    assert (state["reindex_floor"], state["reindex_seq"]) == (7 + slack + 2, 7 + slack + 2)
