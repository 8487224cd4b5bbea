"""The PostgreSQL search table partitioned by month: documents land in their month's
partition (made as they arrive, by any number of processes at once, without waiting for
searches), undated and odd dates in the two partitions outside the window; pages in date
order equal one ordered query over everything while reading only the partitions they need;
a replaced document keeps one row; a table of the older, unpartitioned schema is searched
until `reindex` rebuilds it partitioned; statistics are made after bulk writes."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from mailvault.search import postgresql_partitions as partitions
from mailvault.search import query as q
from mailvault.search.document import IndexDoc
from mailvault.search.postgresql_index import DOCUMENTS, STATE, PostgresIndex
from mailvault.store import database
from mailvault.vault import Vault
from tests import postgres
from tests.postgresql.conftest import Catalog
from tests.support import build_message, count, invoke, run, write_eml_folder


@pytest.fixture
def schema(postgres_cluster: postgres.Cluster, search_database: str,
           tmp_path: Path) -> tuple[str, Path]:
    """(URL, password file) of a new, empty schema."""
    password = tmp_path / "catalog-password"
    password.write_text(postgres_cluster.password + "\n", encoding="utf-8")
    return postgres_cluster.schema_url(search_database), password


def _engine(schema: tuple[str, Path]) -> Engine:
    url, password = schema
    return database.open_engine(password.parent / "unused.sqlite", url, str(password))


@pytest.fixture
def engine(schema: tuple[str, Path]) -> Iterator[Engine]:
    made = _engine(schema)
    yield made
    made.dispose()


@pytest.fixture
def index(engine: Engine) -> Iterator[PostgresIndex]:
    made = PostgresIndex(engine)
    yield made
    made.close()


def _at(year: int, month: int, day: int = 1, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


def _doc(doc_id: int, date: int | None, subject: str = "note", size: int = 100) -> IndexDoc:
    return IndexDoc(id=doc_id, date=date, size=size, tier="active", subject=subject,
                    body="the body", from_=["alice@example.org"])


def _where(engine: Engine) -> dict[int, str]:
    """Each document's id -> the table that holds it."""
    with engine.connect() as conn:
        return {int(i): str(name) for i, name in conn.execute(text(
            f"SELECT d.id, c.relname FROM {DOCUMENTS} d JOIN pg_class c ON c.oid = d.tableoid"))}


def test_documents_go_to_the_partition_of_their_month(index: PostgresIndex,
                                                      engine: Engine) -> None:
    index.put([_doc(1, _at(2001, 5, 14)), _doc(2, _at(2001, 5, 31, 23)),
               _doc(3, None), _doc(4, _at(1975, 3, 1))])
    # A second batch in the same transaction needs months the first did not make.
    index.put([_doc(5, _at(2001, 6, 1)), _doc(6, _at(2150, 1, 1)), _doc(7, 0),
               _doc(8, _at(2024, 2, 29))])
    index.commit(8, 0)
    assert _where(engine) == {
        1: "search_documents_m200105", 2: "search_documents_m200105",
        3: partitions.BEFORE, 4: partitions.BEFORE, 7: partitions.BEFORE,
        5: "search_documents_m200106", 6: partitions.AFTER, 8: "search_documents_m202402"}
    with engine.connect() as conn:
        assert conn.execute(text(
            f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{DOCUMENTS}')")).scalar() \
            == "p"
        assert partitions.existing(conn) == {
            partitions.BEFORE, partitions.AFTER, "search_documents_m200105",
            "search_documents_m200106", "search_documents_m202402"}
    assert index.count(q.MatchAll()) == 8
    assert index.size_bytes() > 0


def _spread(rng: random.Random, count: int) -> list[IndexDoc]:
    """Documents over 14 months, several to a second (ties broken by id), some undated or
    far outside the window, half of them about a budget."""
    docs = []
    for doc_id in range(1, count + 1):
        roll = rng.random()
        if roll < 0.05:
            date = None
        elif roll < 0.08:
            date = rng.choice([_at(1960, 1, 1), _at(2200, 6, 1), 0])
        else:
            date = _at(2020, 1, 1) + rng.randrange(14 * 30) * 86400 + rng.choice([0, 0, 3600])
        docs.append(_doc(doc_id, date, "budget" if rng.random() < 0.5 else "lunch",
                         size=rng.randrange(50, 5000)))
    return docs


def test_pages_in_date_order_equal_one_ordered_query(index: PostgresIndex) -> None:
    rng = random.Random(16)
    docs = _spread(rng, 400)
    index.put(docs[:250])
    index.commit(250, 0)
    index.put(docs[250:])
    index.commit(400, 0)
    newest = sorted(docs, key=lambda d: (d.date or 0, d.id), reverse=True)
    expected = {"newest": newest, "oldest": newest[::-1],
                "largest": sorted(docs, key=lambda d: (d.size, d.id), reverse=True)}
    for query, keep in ((q.MatchAll(), lambda d: True),
                        (q.Term(None, "budget"), lambda d: d.subject == "budget"),
                        (q.Not(q.DateRange(datetime(2020, 3, 1, tzinfo=UTC), None)),
                         lambda d: d.date is None or d.date < _at(2020, 3, 1))):
        for order, ordered in expected.items():
            wanted = [d.id for d in ordered if keep(d)]
            for limit, offset in ((10, 0), (7, 5), (50, 20), (13, 100), (25, len(wanted) - 5),
                                  (10, len(wanted)), (1000, 0), (0, 0)):
                total, ids = index.search(query, limit, offset, order)
                assert total == len(wanted)
                assert ids == wanted[offset:offset + limit], (query, order, limit, offset)
    assert list(index.ids(q.MatchAll(), page=33)) == [d.id for d in newest]


def test_a_page_reads_only_the_partitions_it_needs(index: PostgresIndex,
                                                   engine: Engine) -> None:
    index.put([_doc(month * 100 + n, _at(2021, month, 1 + n))
               for month in range(1, 7) for n in range(20)])
    index.commit(700, 0)
    read: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SELECT id FROM"):
            read.append(statement.split()[3])

    total, ids = index.search(q.MatchAll(), 10)
    assert (total, ids) == (120, [600 + n for n in range(19, 9, -1)])
    assert read == ["search_documents_m202106"]
    read.clear()
    # 25 in: past June's 20, the page is all May's.
    assert index.search(q.MatchAll(), 10, 25)[1] == [500 + n for n in range(14, 4, -1)]
    assert read == ["search_documents_m202105"]
    read.clear()
    # 15 in, 20 long: June's last 5, then May's first 15; April is not read.
    assert index.search(q.MatchAll(), 20, 15)[1][:6] == [604, 603, 602, 601, 600, 519]
    assert read == ["search_documents_m202106", "search_documents_m202105"]
    read.clear()
    assert index.search(q.MatchAll(), 5, 0, "oldest")[1] == [100, 101, 102, 103, 104]
    assert read == ["search_documents_m202101"]


def test_months_are_made_once_by_processes_at_once_without_waiting_for_searches(
        index: PostgresIndex, engine: Engine, schema: tuple[str, Path]) -> None:
    months = [partitions.partition_of(_at(2019, m)) for m in range(1, 13)]
    engines = [_engine(schema) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def make(own: Engine, names: list[str]) -> None:
        try:
            barrier.wait()
            partitions.add_months(own, names)
        except BaseException as exc:  # reported below
            failures.append(exc)

    # A search in progress (its transaction open, holding its lock on the table).
    with engine.connect() as searching:
        searching.execute(text(f"SELECT count(*) FROM {DOCUMENTS}"))
        threads = [threading.Thread(target=make, args=(own, months[n:] + months[:n]))
                   for n, own in enumerate(engines)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        searching.rollback()
    for own in engines:
        own.dispose()
    assert failures == []
    with engine.connect() as conn:
        assert set(months) <= partitions.existing(conn)
        assert conn.execute(text(
            f"SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass('{DOCUMENTS}')"
        )).scalar() == len(months) + 2
    # The writer, which learnt the partitions when it was taken, writes into them.
    index.put([_doc(1, _at(2019, 7, 4))])
    index.commit(1, 0)
    assert _where(engine) == {1: "search_documents_m201907"}


def test_a_replaced_document_keeps_one_row_even_when_its_date_moves(
        index: PostgresIndex, engine: Engine) -> None:
    index.put([_doc(5, _at(2001, 5, 1)), _doc(6, _at(2001, 5, 2))])
    index.commit(6, 0)
    index.put([_doc(5, _at(2003, 1, 1), "moved")])
    index.commit(6, 0)
    assert _where(engine) == {5: "search_documents_m200301", 6: "search_documents_m200105"}
    index.close()
    reopened = PostgresIndex(engine)
    try:
        reopened.put([_doc(6, _at(2001, 5, 2), "again")])
        reopened.commit(6, 0)
        assert sorted(reopened.ids_through(6)) == [5, 6]
        assert reopened.search(q.Term("subject", "again"), 10) == (1, [6])
    finally:
        reopened.close()


def test_statistics_are_made_for_tables_that_took_many_rows(index: PostgresIndex,
                                                            engine: Engine) -> None:
    index.put([_doc(n, _at(2018, 3, 1) + n) for n in range(1, 121)]
              + [_doc(n, _at(2018, 4, 1) + n) for n in range(121, 124)])
    index.commit(123, 0)
    index.refresh_statistics()

    def analyzed(name: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relid = to_regclass(:n)"),
                {"n": name}).scalar() or 0)

    assert analyzed("search_documents_m201803") == 1
    assert analyzed("search_documents_m201804") == 0
    index.refresh_statistics()  # nothing new since
    assert analyzed("search_documents_m201803") == 1


# What schema 1 made (mailvault before month partitions): one table, the id its key.
_SCHEMA_1 = [
    f"CREATE TABLE old_documents (LIKE {DOCUMENTS})",
    "ALTER TABLE old_documents ADD PRIMARY KEY (id)",
    f"INSERT INTO old_documents SELECT * FROM {DOCUMENTS}",
    f"DROP TABLE {DOCUMENTS}",
    f"ALTER TABLE old_documents RENAME TO {DOCUMENTS}",
    f"CREATE INDEX {DOCUMENTS}_newest ON {DOCUMENTS} (sort_date, id)",
    f"CREATE INDEX {DOCUMENTS}_t_subject ON {DOCUMENTS} USING GIN (t_subject)",
    f"UPDATE {STATE} SET schema = 1",
]


def _messages(folder: Path, first: int, number: int) -> None:
    start = datetime(2022, 1, 1, tzinfo=UTC)
    write_eml_folder(folder, [build_message(
        subject=f"budget round {n}", sender=f"person{n}@example.org", to=["cfo@example.org"],
        date=start + timedelta(hours=n), body=f"the forecast number {n}\n")
        for n in range(first, first + number)])


def _vault(pg: Catalog, folder: Path) -> Path:
    vault = folder / "vault"
    made = run("init", "--vault", vault, "--catalog", pg.url, "--catalog-password-file",
               pg.password_file, "--search-backend", "postgresql")
    assert made.returncode == 0, made.stderr.decode()
    return vault


def _analyzed(vault: Path, table: str) -> int:
    """How many times ANALYZE (not autovacuum's) ran on this table."""
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relid = to_regclass(:t)"),
            {"t": table}).scalar() or 0)


def test_an_import_leaves_the_months_it_filled_with_statistics(pg_catalog: Catalog,
                                                                tmp_path: Path) -> None:
    vault = _vault(pg_catalog, tmp_path)
    _messages(tmp_path / "mail", 0, 60)
    assert invoke("import", tmp_path / "mail", "--vault", vault).exit_code == 0
    assert _analyzed(vault, "search_documents_m202201") == 1


def test_an_unpartitioned_table_is_searched_until_reindex_rebuilds_it(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    vault = _vault(pg_catalog, tmp_path)
    _messages(tmp_path / "first", 0, 6)
    assert invoke("import", tmp_path / "first", "--vault", vault).exit_code == 0
    with Vault.open(vault) as opened, opened.engine.begin() as conn:
        for statement in _SCHEMA_1:
            conn.execute(text(statement))

    def kind() -> str:
        with Vault.open(vault) as opened, opened.engine.connect() as conn:
            return str(conn.execute(text(
                f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{DOCUMENTS}')")).scalar())

    assert count(vault, "budget") == 6
    status = invoke("status", "--vault", vault, "--json")
    assert "without month partitions" in status.text
    assert "mailvault reindex" in status.text
    # Still written as it is: new mail is found in it.
    _messages(tmp_path / "second", 6, 4)
    assert invoke("import", tmp_path / "second", "--vault", vault).exit_code == 0
    assert kind() == "r"
    assert count(vault, 'body:"forecast number 7"') == 1
    newest = invoke("search", "", "--vault", vault, "--json", "--limit", "3")
    rebuilt = invoke("reindex", "--vault", vault)
    assert rebuilt.exit_code == 0, rebuilt.text
    assert kind() == "p"
    assert count(vault, 'body:"forecast number 7"') == 1
    assert invoke("search", "", "--vault", vault, "--json", "--limit", "3").text == newest.text
    assert "without month partitions" not in invoke("status", "--vault", vault, "--json").text
    with Vault.open(vault) as opened:
        assert opened.index.upgrade == ""
