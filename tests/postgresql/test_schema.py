"""The catalog's schema on PostgreSQL: the same versioned migrations make it, and they make
exactly the tables the code declares (as they do on SQLite, tests/backup/test_vault_format.py).
"""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from mailvault.store import database, schema, vault_format
from tests.postgresql.conftest import Catalog


def test_the_migrations_make_the_declared_tables_on_postgresql(pg_catalog: Catalog) -> None:
    engine = database.open_engine(pg_catalog.password_file, pg_catalog.url,
                                  str(pg_catalog.password_file))
    try:
        assert vault_format.format_of(engine) is None
        with engine.begin() as conn:
            command.upgrade(vault_format.alembic_config(conn), "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
            columns = {c["name"]: c["type"] for c in inspect(conn).get_columns("dictionaries")}
        assert vault_format.format_of(engine) == vault_format.FORMAT_VERSION
        # Through SQLAlchemy's types: a BLOB on SQLite is a BYTEA here.
        assert "BYTEA" in str(columns["sealed"]).upper()
    finally:
        engine.dispose()


def test_create_and_the_migrations_agree_on_postgresql(pg_catalog: Catalog) -> None:
    engine = database.open_engine(pg_catalog.password_file, pg_catalog.url,
                                  str(pg_catalog.password_file))
    try:
        vault_format.create(engine)
        with engine.begin() as conn:
            # Already at head: running the migrations again changes nothing.
            command.upgrade(vault_format.alembic_config(conn), "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        engine.dispose()
