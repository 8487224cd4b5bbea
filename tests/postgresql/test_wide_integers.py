"""Format 5 on PostgreSQL, whose INTEGER is 32-bit: ids, times past 2038 and every other
column that can outgrow 2**31 are BIGINT, in a new vault and in a format-4 catalog upgraded
(the same on SQLite, where nothing changes: tests/backup/test_vault_format.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError

from mailvault.store import catalog_copy, database, schema, vault_format
from mailvault.usecases import auditing, finding, monitoring
from mailvault.vault import CATALOG_FILE, Vault
from tests.backup.conftest import READER
from tests.backup.test_vault_format import copy_fixture
from tests.fixtures.make_vault_fixture import MESSAGES, fixture_path
from tests.postgresql.conftest import Catalog
from tests.support import build_message, catalog_sql, invoke, search_json, write_eml_folder

PAST_32_BITS = 2**31 + 7
# 2040-02-03: its epoch seconds do not fit in 32 bits.
LATE_DATE = datetime(2040, 2, 3, 4, 5, tzinfo=UTC)


def _engine(pg: Catalog) -> Engine:
    return database.open_engine(pg.password_file, pg.url, str(pg.password_file))


def _sequence_types(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT data_type FROM information_schema.sequences "
                                     "WHERE sequence_schema = current_schema()")).scalars())


def test_a_format_4_catalog_upgrades_to_64_bit_columns_and_sequences(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    engine = _engine(pg_catalog)
    try:
        with engine.begin() as conn:
            command.upgrade(vault_format.alembic_config(conn), "0004")
            conn.execute(text("INSERT INTO volumes (tier, folder, created_at) "
                              "VALUES ('active', '/v', 1700000000)"))
        # What format 4 refuses: a time past 2038.
        with pytest.raises(DataError), engine.begin() as conn:
            conn.execute(text("UPDATE volumes SET created_at = :late"),
                         {"late": PAST_32_BITS})
        assert _sequence_types(engine) == {"integer"}

        assert vault_format.upgrade(engine, tmp_path) == (4, vault_format.FORMAT_VERSION)

        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        assert _sequence_types(engine) == {"bigint"}
        with engine.begin() as conn:
            conn.execute(text("UPDATE volumes SET created_at = :late"),
                         {"late": PAST_32_BITS})
            conn.execute(text("SELECT setval(pg_get_serial_sequence('volumes', 'id'), :at)"),
                         {"at": PAST_32_BITS})
            conn.execute(text("INSERT INTO volumes (tier, folder, created_at) "
                              "VALUES ('open', '/w', 1)"))
            rows = conn.execute(text("SELECT id, folder, created_at FROM volumes "
                                     "ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [(1, "/v", PAST_32_BITS),
                                                (PAST_32_BITS + 1, "/w", 1)]
    finally:
        engine.dispose()


def test_the_format_4_fixture_vault_upgrades_with_mailvault_upgrade(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    """The fixture vault of format 4 with its catalog moved into PostgreSQL as format 4 made
    it there, then `mailvault upgrade`: the vault reads, verifies and counts as before."""
    path = copy_fixture(fixture_path(4), tmp_path / "vault")
    embedded, engine = database.sqlite_engine(path / CATALOG_FILE), _engine(pg_catalog)
    try:
        with engine.begin() as conn:
            command.upgrade(vault_format.alembic_config(conn), "0004")
        catalog_copy.begin(engine, str(path))
        catalog_copy.copy_tables(embedded, engine)
        catalog_copy.finish(engine)
    finally:
        embedded.dispose()
        engine.dispose()
    for file in path.glob(CATALOG_FILE + "*"):
        file.unlink()
    with (path / "mailvault.toml").open("a", encoding="utf-8") as settings:
        settings.write(f'\n[catalog]\nurl = "{pg_catalog.url}"\n'
                       f'password_file = "{pg_catalog.password_file}"\n')

    upgraded = invoke("upgrade", "--no-backup", "--vault", path)

    assert upgraded.exit_code == 0, upgraded.text
    assert f"from format 4 to {vault_format.FORMAT_VERSION}" in upgraded.text
    with Vault.open(path) as vault:
        assert vault.engine.dialect.name == "postgresql"
        assert monitoring.verify(vault, READER).ok
        assert auditing.verify_chain(vault, READER).ok
        assert finding.count(vault, READER, "") == MESSAGES
        assert finding.count(vault, READER, "subject:quarterly") == 2


def test_a_new_catalog_has_64_bit_sequences(pg_catalog: Catalog) -> None:
    engine = _engine(pg_catalog)
    try:
        vault_format.create(engine)
        assert _sequence_types(engine) == {"bigint"}
    finally:
        engine.dispose()


def test_a_message_past_2038_with_an_id_past_2_to_the_31_is_archived_and_read(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    # Searched in PostgreSQL: Tantivy's order key (index schema 5) holds ids below 2**31 and
    # records a larger one as an index failure (tests/core/test_index_layouts.py).
    path = tmp_path / "vault"
    Vault.create(path, catalog_url=pg_catalog.url,
                 catalog_password_file=str(pg_catalog.password_file),
                 search_backend="postgresql").close()
    catalog_sql(path, "SELECT setval(pg_get_serial_sequence('messages', 'id'), ?)",
                PAST_32_BITS)
    raw = build_message(subject="from the future", date=LATE_DATE)
    write_eml_folder(tmp_path / "mail", [raw])

    imported = invoke("import", tmp_path / "mail", "--vault", path)

    assert imported.exit_code == 0, imported.text
    [row] = search_json(path, "after:2040-01-01")
    assert row["id"] == PAST_32_BITS + 1 and row["date"].startswith("2040-02-03")
    got = invoke("get", str(row["id"]), "--raw", "--vault", path)
    assert got.exit_code == 0 and got.stdout == raw
    checked = invoke("verify", "--vault", path, "--json")
    assert checked.exit_code == 0, checked.text
