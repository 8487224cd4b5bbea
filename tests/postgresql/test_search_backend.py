"""A vault searched by PostgreSQL (``init --search-backend postgresql``): no index folder,
its documents rows of the catalog's database, healed and rebuilt as the Tantivy index is, one
writer at a time, and refused without a PostgreSQL catalog. (The query language itself runs on
both backends in tests/core/test_query_language.py and the other query tests.)"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from mailvault.search import query as q
from mailvault.search.indexing import index_progress
from mailvault.search.postgresql_index import DOCUMENTS, STATE, PostgresIndex
from mailvault.vault import Vault
from tests.postgresql.conftest import Catalog
from tests.support import build_message, count, invoke, run, write_eml_folder


def _init(vault: Path, pg: Catalog) -> None:
    made = run("init", "--vault", vault, "--catalog", pg.url, "--catalog-password-file",
               pg.password_file, "--search-backend", "postgresql")
    assert made.returncode == 0, made.stderr.decode()


def _import(vault: Path, folder: Path, messages: int) -> None:
    write_eml_folder(folder, [build_message(
        subject=f"budget round {n}", sender=f"person{n}@example.org", to=["cfo@example.org"],
        date=datetime(2022, 1, 1 + n, tzinfo=UTC), body=f"the forecast number {n}\n")
        for n in range(messages)])
    imported = invoke("import", folder, "--vault", vault, "--json")
    assert imported.exit_code == 0, imported.text


def test_a_vault_searched_in_postgresql_has_no_index_folder(pg_catalog: Catalog,
                                                           tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    assert 'backend = "postgresql"' in (vault / "mailvault.toml").read_text(encoding="utf-8")
    _import(vault, tmp_path / "mail", 5)
    assert count(vault, "budget") == 5
    assert count(vault, 'body:"forecast number"') == 5
    assert count(vault, "from:person3") == 1
    assert not (vault / "index").exists()
    with Vault.open(vault) as opened:
        assert isinstance(opened.index, PostgresIndex)
        with opened.engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {DOCUMENTS}")).scalar() == 5
        progress = index_progress(opened)
        assert (progress.messages, progress.indexed, progress.behind) == (5, 5, 0)


def test_lost_documents_are_healed_and_reindex_rebuilds(pg_catalog: Catalog,
                                                        tmp_path: Path) -> None:
    """Rows deleted behind the program's back (the marker kept, so the records disagree with
    what is there only by count) are found by `reindex`; rows and marker gone are healed on
    the next open."""
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    _import(vault, tmp_path / "mail", 4)
    with Vault.open(vault) as opened, opened.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {DOCUMENTS}"))
        conn.execute(text(f"UPDATE {STATE} SET watermark = NULL, generation = NULL"))
    assert count(vault, "budget") == 4  # healed when the vault opened
    with Vault.open(vault) as opened, opened.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {DOCUMENTS} WHERE id = 1"))
    assert count(vault, "budget") == 3  # the marker vouches for it: nothing to heal
    rebuilt = run("reindex", "--vault", vault)
    assert rebuilt.returncode == 0, rebuilt.stderr.decode()
    assert count(vault, "budget") == 4


def test_one_writer_at_a_time(pg_catalog: Catalog, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    with Vault.open(vault) as first, Vault.open(vault) as second:
        assert not second.index.writer_busy()
        first.index.delete([1])  # takes the writer
        assert second.index.writer_busy()
        assert not first.index.writer_busy()  # its own writer
        first.index.close()
        assert not second.index.writer_busy()
        assert second.index.count(q.MatchAll()) == 0


def test_the_postgresql_backend_needs_a_postgresql_catalog(tmp_path: Path) -> None:
    refused = run("init", "--vault", tmp_path / "vault", "--search-backend", "postgresql")
    assert refused.returncode == 1
    assert refused.stderr.decode() == "mailvault: --search-backend goes with --catalog.\n"
    assert not (tmp_path / "vault").exists()
    if os.environ.get("MAILVAULT_TEST_CATALOG") == "postgresql":
        return  # every vault's catalog is in PostgreSQL under that switch
    made = run("init", "--vault", tmp_path / "embedded")
    assert made.returncode == 0
    switched = run("count", "", "--vault", tmp_path / "embedded",
                   env={"MAILVAULT_SEARCH_BACKEND": "postgresql"})
    assert switched.returncode == 1
    assert b"needs the catalog in PostgreSQL" in switched.stderr
