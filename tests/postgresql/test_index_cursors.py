"""Several nodes sharing one PostgreSQL catalog, each with its own index folder, follow one
reindex log: a change made on one node reaches the other's index as that change, not as a
rebuild; the log keeps an entry until every node has applied it; and entries commit in the
order they are numbered, so that no node passes over one still uncommitted."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from mailvault.config import load_settings
from mailvault.store import catalog
from mailvault.vault import open_catalog
from tests.postgresql.conftest import Catalog, join
from tests.reliability.processes import wait_for
from tests.support import (
    NODE_VARIABLE,
    build_message,
    count,
    heal,
    invoke,
    reindex_log_entries,
    run,
    write_eml_folder,
)


def _init(vault: Path, pg: Catalog) -> None:
    made = run("init", "--vault", vault, "--catalog", pg.url, "--catalog-password-file",
               pg.password_file)
    assert made.returncode == 0, made.stderr.decode()




def test_a_change_on_one_node_reaches_the_other_as_that_change(
        pg_catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "node-a"
    monkeypatch.setenv(NODE_VARIABLE, "node-a")
    _init(first, pg_catalog)
    second = join(first, tmp_path / "node-b")
    write_eml_folder(tmp_path / "mail", [build_message(subject=f"message {i}",
                                                       body=f"word{i}\n") for i in range(20)])
    assert invoke("import", tmp_path / "mail", "--vault", first).exit_code == 0
    monkeypatch.setenv(NODE_VARIABLE, "node-b")
    assert heal(second) == 20  # a new index folder: every document

    monkeypatch.setenv(NODE_VARIABLE, "node-a")
    assert invoke("tier", "move", "word5 OR word6", "--to", "deep", "--vault",
                  first).exit_code == 0
    assert count(first, "tier:deep") == 2
    assert reindex_log_entries(first) == 2  # node b has yet to apply them

    monkeypatch.setenv(NODE_VARIABLE, "node-b")
    assert heal(second) == 2  # the two moved, not the twenty
    assert (count(second, "tier:deep"), count(second, "")) == (2, 20)
    assert reindex_log_entries(first) == 0


def test_log_entries_commit_in_the_order_they_are_numbered(pg_catalog: Catalog,
                                                           tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    engine = open_catalog(vault, load_settings(vault))
    try:
        with engine.connect() as first:
            first.begin()
            catalog.queue_reindex(first, [1])
            finished = threading.Event()

            def second() -> None:
                with engine.begin() as conn:
                    catalog.queue_reindex(conn, [2])
                finished.set()

            waiting = threading.Thread(target=second)
            waiting.start()
            # The second numbers its entry only once the first has committed.
            with engine.connect() as probe:
                wait_for(lambda: probe.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND NOT granted")).scalar() == 1, "the second writer to wait")
            assert not finished.is_set()
            first.commit()
        waiting.join(timeout=30)
        assert finished.is_set()
        with engine.connect() as conn:
            entries = catalog.reindex_after(conn, 0)
        assert [e.message_id for e in entries] == [1, 2]
        assert entries[0].seq < entries[1].seq
    finally:
        engine.dispose()
