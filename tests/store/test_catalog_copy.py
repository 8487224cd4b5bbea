"""What a catalog copy (migrate, backup, restore) leaves behind: the reindex log and the
indexes' cursors describe the indexes of the catalog copied from, so the copy has neither,
and its floor is raised past the log: an index copied along that had not applied all of it
is rebuilt instead of trusted."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, func, select

from mailvault.config import load_settings
from mailvault.store import catalog, catalog_copy, schema
from mailvault.vault import open_catalog
from tests.support import build_message, invoke, write_eml_folder


def test_a_copy_leaves_the_reindex_log_behind_and_raises_its_floor(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    write_eml_folder(tmp_path / "mail", [build_message(subject=f"m {i}") for i in range(3)])
    assert invoke("init", "--vault", vault).exit_code == 0
    assert invoke("import", tmp_path / "mail", "--vault", vault).exit_code == 0
    source = open_catalog(vault, load_settings(vault))
    target = create_engine(f"sqlite:///{tmp_path / 'copy.sqlite'}")
    try:
        with source.begin() as conn:
            catalog.queue_reindex(conn, [1, 2])
            newest = catalog.last_reindex_seq(conn)
            assert catalog.reindex_floor(conn) < newest

        rows = catalog_copy.copy_catalog(source, target, "a test")

        assert schema.reindex_log.name not in rows
        assert schema.index_cursors.name not in rows
        with target.connect() as conn:
            assert catalog.reindex_after(conn, 0) == []
            assert conn.execute(select(func.count()).select_from(
                schema.index_cursors)).scalar() == 0
            assert (catalog.reindex_floor(conn), catalog.last_reindex_seq(conn)) == (
                newest, newest)
            assert conn.execute(select(func.count()).select_from(
                schema.messages)).scalar() == 3
    finally:
        source.dispose()
        target.dispose()
