"""The search backend in PostgreSQL: full text in the catalog's own database.

Chosen by ``[search] backend = "postgresql"`` on a vault whose catalog is in PostgreSQL
(``init --catalog URL --search-backend postgresql``). One row a message in
``search_documents``: a ``tsvector`` column per text field, each with a GIN index, arrays for
the keyword fields (GIN where queries look values up), and the date, size and tier. The
table is partitioned by month of the message's date (``postgresql_partitions``): a page
ordered by date is read from the newest (or oldest) partition that holds matches and stops
as soon as it is full, since an older partition cannot hold a newer message; the count by
partition that gives the exact total says which partitions those are. ``search_state``
holds the marker (watermark, generation) and the schema version.

Words are Tantivy's, not PostgreSQL's parser's: the default parser keeps
``alice@example.org`` or ``report.pdf`` as one token where Tantivy's ``simple`` tokenizer
splits them, so every text is split here by the very analyzer the Tantivy backend uses
(``index.text_analyzer``, at the positions it gives) and handed to PostgreSQL as a
``tsvector`` literal; queries are ``tsquery`` literals of the same words (``<->`` for a
phrase, ``:*`` for a prefix). The ``simple`` configuration is thus never asked to split.
Values of one field are a position apart, so a phrase never runs from one into the next.

The tables are derived data, like the index folder: they are made by this backend when it
first opens (not by the catalog's migrations, so an embedded vault never carries them) and
dropped and made again when their schema version is unknown; healing then fills them. The
one table of schema 1 (before partitions) is kept and searched as one partition until
``mailvault reindex`` rebuilds it partitioned (``upgrade`` says so).

Limits PostgreSQL sets (docs/postgresql.md): positions stop at 16,383 (words past that are
found, phrases among them are not) and a word keeps its first 256 positions; a document
whose ``tsvector`` would pass 1 MB is refused and recorded as an index failure.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from mailvault.errors import QueryError, StorageFullError, StoreError, VaultError
from mailvault.search import postgresql_partitions as partitions
from mailvault.search import query as q
from mailvault.search.backend import FacetCounts, IndexMarker
from mailvault.search.document import IndexDoc, spaced
from mailvault.search.index import (
    DEFAULT_FIELDS,
    FACET_FIELDS,
    KEYWORD_FIELDS,
    TEXT_FIELDS,
    keyword_value,
    positioned_words,
    text_analyzer,
    word_splitter,
)
from mailvault.store import database

SCHEMA_VERSION = 2
# Schema 1: one table, not partitioned (kept, and written, until a reindex rebuilds it).
UNPARTITIONED_VERSION = 1
DOCUMENTS = partitions.DOCUMENTS
STATE = "search_state"
# The keyword fields kept as arrays (a message may have several values), the rest as text.
_ARRAYS = ("has", "tag", "fromdomain", "folderkey", "refs", "party")
_SCALARS = ("tier", "msgid")
# Arrays that queries look values up in (the others are counted or unused by queries).
_ARRAY_INDEXED = ("fromdomain", "refs", "party", "tag")
# PostgreSQL's limits of a tsvector: the highest position, and positions kept per word.
_MAX_POSITION = 16_383
_MAX_POSITIONS = 256
_LOCK_WAIT_S = 30.0
# The high half of the session lock the writer holds (the low half: the oid of the state
# table, which a rebuild in partitions keeps, so that vaults in several schemas of one
# database each have their own writer).
_LOCK_CLASS = 0x6D76_7378
# A table is analyzed after a heal once it took this many rows and a tenth of those it held
# (autovacuum's own rule, applied at once instead of at autovacuum's next round).
_ANALYZE_MIN_ROWS = 50
_ANALYZE_FRACTION = 0.1
# SQLSTATE classes of a write the rows are at fault for (a value out of range, a tsvector
# over 1 MB), retried a row at a time; any other failure is the database's (a full disk,
# a lost connection) and fails the write.
_ROW_FAULTS = ("22", "23", "54")
_ORDERS = {"newest": "sort_date DESC, id DESC", "oldest": "sort_date ASC, id ASC",
           "largest": "size DESC, id DESC"}
_INDEX_FIELDS = frozenset({*TEXT_FIELDS, *KEYWORD_FIELDS, *FACET_FIELDS, "refs", "party"})


def _tsv(name: str) -> str:
    return f"t_{name}"


def _documents_ddl() -> list[str]:
    """The partitioned documents table, its indexes (which PostgreSQL makes on every
    partition, including those attached later) and its two partitions outside the window of
    months. A message's id is not a key: a key of a partitioned table must hold the
    partition column, and the one writer keeps one row per id by deleting before it writes
    (``put``)."""
    tsvectors = ", ".join(f"{_tsv(n)} TSVECTOR NOT NULL" for n in TEXT_FIELDS)
    arrays = ", ".join(f"{n} TEXT[] NOT NULL" for n in _ARRAYS)
    statements = [
        f"CREATE TABLE {DOCUMENTS} (id BIGINT NOT NULL, date BIGINT, "
        "sort_date BIGINT NOT NULL, size BIGINT NOT NULL, tier TEXT NOT NULL, year TEXT, "
        f"msgid TEXT NOT NULL, {arrays}, {tsvectors}) PARTITION BY RANGE (sort_date)",
        f"CREATE INDEX {DOCUMENTS}_newest ON {DOCUMENTS} (sort_date, id)",
        f"CREATE INDEX {DOCUMENTS}_id ON {DOCUMENTS} (id)",
        f"CREATE INDEX {DOCUMENTS}_largest ON {DOCUMENTS} (size, id)",
        f"CREATE INDEX {DOCUMENTS}_tier ON {DOCUMENTS} (tier)",
        f"CREATE INDEX {DOCUMENTS}_msgid ON {DOCUMENTS} (msgid)",
    ]
    # fastupdate off: with it, new rows wait in each GIN index's pending list, which every
    # search then reads through row by row until a vacuum empties it (a bulk heal or
    # import left searches over a fresh index at seconds each); writes pay instead.
    gin = "WITH (fastupdate = off)"
    statements += [f"CREATE INDEX {DOCUMENTS}_{n} ON {DOCUMENTS} USING GIN ({n}) {gin}"
                   for n in _ARRAY_INDEXED]
    statements += [f"CREATE INDEX {DOCUMENTS}_{_tsv(n)} ON {DOCUMENTS} USING GIN ({_tsv(n)}) "
                   f"{gin}" for n in TEXT_FIELDS]
    return statements + partitions.fixed_ddl()


def _state_ddl() -> list[str]:
    return [f"CREATE TABLE {STATE} (one INTEGER PRIMARY KEY CHECK (one = 1), "
            "schema INTEGER NOT NULL, watermark BIGINT, generation BIGINT)",
            f"INSERT INTO {STATE} (one, schema) VALUES (1, {SCHEMA_VERSION})"]


_COLUMNS = ("id", "date", "sort_date", "size", "tier", "year", "msgid", *_ARRAYS,
            *(_tsv(n) for n in TEXT_FIELDS))
_CASTS = {**{n: "TEXT[]" for n in _ARRAYS}, **{_tsv(n): "TSVECTOR" for n in TEXT_FIELDS}}
_INSERT = text(
    f"INSERT INTO {DOCUMENTS} ({', '.join(_COLUMNS)}) VALUES ("
    + ", ".join(f"CAST(:{c} AS {_CASTS[c]})" if c in _CASTS else f":{c}" for c in _COLUMNS)
    + ")")
_COPY = f"COPY {DOCUMENTS} ({', '.join(_COLUMNS)}) FROM STDIN"


def _quoted(word: str) -> str:
    """A word as a quoted lexeme of a tsvector or tsquery literal."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _clean(value: str) -> str:
    # PostgreSQL's text holds no NUL; a query cannot type one either.
    return value.replace("\x00", "\ufffd")


@dataclass
class _WriterState:
    """What the writer knows of the table while it holds the writer's lock (no other
    process writes meanwhile): whether it is partitioned, which partitions exist, and an id
    no document is above (a document of a higher id needs no delete before it is added)."""

    partitioned: bool
    partitions: set[str]
    max_id: int


def _row_refused(exc: BaseException) -> bool:
    """Whether a failed write was the rows' fault rather than the database's."""
    if isinstance(exc, ValueError):
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return str(getattr(orig, "sqlstate", None) or "")[:2] in _ROW_FAULTS


class PostgresIndex:
    """The search backend in the catalog's PostgreSQL database (``backend.SearchBackend``)."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != database.POSTGRESQL:
            raise VaultError("the postgresql search backend needs the catalog in PostgreSQL "
                             "([catalog] url).")
        self.engine = engine
        self.analyzer = text_analyzer()
        self._splitter = word_splitter()
        self.lost_writers = 0
        self._writer_conn: Connection | None = None
        self._state: _WriterState | None = None
        self._write_lock = threading.RLock()
        # Rows written into each table since its statistics were last refreshed here.
        self._written: Counter[str] = Counter()
        self._lock_key = self._prepare()

    @property
    def location(self) -> str:
        """The catalog's database (one index that every node shares)."""
        return "postgresql"

    @property
    def upgrade(self) -> str:
        """What a rebuild would bring ('' when the tables have the current schema)."""
        with self.engine.connect() as conn:
            version = conn.execute(text(f"SELECT schema FROM {STATE}")).scalar()
        if version != UNPARTITIONED_VERSION:
            return ""
        return ("the search tables were built by an older mailvault, without month "
                "partitions: pages of many matches are slower until 'mailvault reindex' "
                "rebuilds them")

    def _prepare(self) -> int:
        """Make the tables if they are missing or of an unknown schema version; the key of
        the writer's lock."""
        with self.engine.begin() as conn:
            # One process makes them: the catalog's writer lock, for this transaction.
            database.serialize_writers(conn)
            version = None
            if conn.execute(text(f"SELECT to_regclass('{STATE}')")).scalar() is not None:
                version = conn.execute(text(f"SELECT schema FROM {STATE}")).scalar()
            if version not in (SCHEMA_VERSION, UNPARTITIONED_VERSION):
                conn.execute(text(f"DROP TABLE IF EXISTS {DOCUMENTS}, {STATE}"))
                for statement in _documents_ddl() + _state_ddl():
                    conn.execute(text(statement))
            oid = conn.execute(text(f"SELECT CAST(to_regclass('{STATE}') AS oid)")).scalar()
        return (_LOCK_CLASS << 32) | int(oid or 0)

    # -- writing ---------------------------------------------------------------------------

    def _writer(self) -> Connection:
        """The writer's own connection, holding the session lock that makes it the one
        writer of this vault's search tables; waits for another process's writer first."""
        if self._writer_conn is None:
            conn = self.engine.connect()
            deadline = time.monotonic() + _LOCK_WAIT_S
            try:
                while not conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                       {"key": self._lock_key}).scalar():
                    conn.rollback()
                    if time.monotonic() > deadline:
                        raise VaultError("the search index cannot be written: another "
                                         "process holds its writer.")
                    time.sleep(0.2)
                self._state = self._writer_state(conn)
                conn.commit()  # the session lock outlives the transaction that took it
            except BaseException:
                conn.close()
                raise
            self._writer_conn = conn
        return self._writer_conn

    @staticmethod
    def _writer_state(conn: Connection) -> _WriterState:
        kind = conn.execute(text(
            f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{DOCUMENTS}')")).scalar()
        highest = conn.execute(text(f"SELECT max(id) FROM {DOCUMENTS}")).scalar()
        partitioned = kind == "p"
        return _WriterState(partitioned, partitions.existing(conn) if partitioned else set(),
                            int(highest or 0))

    def hold_writer(self) -> None:
        """Take the writer now, as the first write would (waiting for another process's)."""
        with self._write_lock:
            self._writer()

    def writer_busy(self) -> bool:
        if self._writer_conn is not None:
            return False
        with self.engine.connect() as conn:
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                 {"key": self._lock_key}).scalar()
            if taken:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key})
            conn.commit()
        return not taken

    @contextlib.contextmanager
    def _writing(self) -> Iterator[tuple[Connection, _WriterState]]:
        """The writer's connection and what it knows, for one write; a failure of the
        database (a full disk, a lost connection) drops what was not committed and raises
        StoreError."""
        with self._write_lock:
            conn = self._writer()
            assert self._state is not None
            try:
                yield conn, self._state
            except (DBAPIError, psycopg.Error, StorageFullError) as exc:
                self._drop_uncommitted()
                raise self._write_error(exc) from exc

    def _drop_uncommitted(self) -> None:
        self.lost_writers += 1
        conn = self._writer_conn
        if conn is None:
            return
        try:
            conn.rollback()
        except DBAPIError:
            # The connection is gone, and the session lock with it.
            conn.invalidate()
            conn.close()
            self._writer_conn = None
            self._state = None

    @staticmethod
    def _write_error(exc: Exception) -> StoreError:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(exc, StorageFullError) or database.is_disk_full(reason):
            return StorageFullError("the disk is full: the search index cannot be written.")
        return StoreError(f"the search index cannot be written: {reason}.")

    def put(self, docs: Sequence[IndexDoc], replace: bool = True) -> dict[int, str]:
        """Add (or replace: a message has one row) documents; not visible until commit().
        A document the database will not take is left out and returned, id -> reason.

        The month partitions the documents need are made first, each committed on its own
        (``postgresql_partitions.add_months``); then the rows go in with one COPY."""
        rejected: dict[int, str] = {}
        rows = []
        for doc in docs:
            try:
                rows.append(self._row(doc))
            except Exception as exc:  # what the analyzer cannot take costs one document
                rejected[doc.id] = f"{type(exc).__name__}: {exc}"
        if not rows:
            return rejected
        with self._writing() as (conn, state):
            tables = {int(row["id"]): self._table_of(state, int(row["sort_date"]))
                      for row in rows}
            self._add_partitions(state, set(tables.values()))
            # Only an id the table may hold already needs its row deleted first.
            replaced = [i for i in tables if i <= state.max_id] if replace else []
            try:
                with conn.begin_nested():
                    self._delete_rows(conn, replaced)
                    _copy(conn, rows)
            except (DBAPIError, psycopg.Error, ValueError) as exc:
                if not _row_refused(exc):
                    raise
                # One row spoiled the batch: each again on its own, to keep the others
                # (after looking again at the partitions: one may have been detached).
                if state.partitioned:
                    state.partitions = partitions.existing(conn)
                    self._add_partitions(state, set(tables.values()))
                self._delete_rows(conn, replaced)
                for row in rows:
                    try:
                        with conn.begin_nested():
                            conn.execute(_INSERT, [row])
                    except (DBAPIError, ValueError) as exc_row:
                        if not _row_refused(exc_row):
                            raise
                        reason = exc_row.orig if isinstance(exc_row, DBAPIError) else exc_row
                        rejected[int(row["id"])] = f"{type(reason).__name__}: {reason}"
            state.max_id = max(state.max_id, *tables)
            self._written.update(table for i, table in tables.items() if i not in rejected)
        return rejected

    def _add_partitions(self, state: _WriterState, tables: set[str]) -> None:
        missing = tables - state.partitions - {DOCUMENTS}
        if missing:
            partitions.add_months(self.engine, sorted(missing))
            state.partitions |= missing

    @staticmethod
    def _table_of(state: _WriterState, sort_date: int) -> str:
        return partitions.partition_of(sort_date) if state.partitioned else DOCUMENTS

    @staticmethod
    def _delete_rows(conn: Connection, ids: Sequence[int]) -> None:
        if ids:
            conn.execute(text(f"DELETE FROM {DOCUMENTS} WHERE id = ANY(CAST(:ids AS BIGINT[]))"),
                         {"ids": list(ids)})

    def delete(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._writing() as (conn, _state):
            self._delete_rows(conn, ids)

    def commit(self, watermark: int | None = None, generation: int | None = None) -> None:
        with self._writing() as (conn, _state):
            if watermark is not None or generation is not None:
                current = self._marker(conn)
                if (watermark is None or generation is None) and current is not None:
                    watermark = current.watermark if watermark is None else watermark
                    generation = current.generation if generation is None else generation
                if watermark is not None and generation is not None:
                    conn.execute(text(f"UPDATE {STATE} SET watermark = :w, generation = :g"),
                                 {"w": watermark, "g": generation})
            conn.commit()

    def marker(self) -> IndexMarker | None:
        with self.engine.connect() as conn:
            return self._marker(conn)

    @staticmethod
    def _marker(conn: Connection) -> IndexMarker | None:
        row = conn.execute(text(f"SELECT watermark, generation FROM {STATE}")).first()
        if row is None or row[0] is None or row[1] is None:
            return None
        return IndexMarker(int(row[0]), int(row[1]))

    def clear(self) -> None:
        """Delete every document and the marker; a table of the older schema is made
        again partitioned (what ``reindex`` does to upgrade it)."""
        with self._write_lock:
            self._drop_uncommitted()  # whatever was added and not committed goes too
            with self._writing() as (conn, state):
                if state.partitioned:
                    conn.execute(text(f"TRUNCATE {DOCUMENTS}"))
                else:
                    conn.execute(text(f"DROP TABLE {DOCUMENTS}"))
                    for statement in _documents_ddl():
                        conn.execute(text(statement))
                conn.execute(text(f"UPDATE {STATE} SET watermark = NULL, generation = NULL, "
                                  f"schema = {SCHEMA_VERSION}"))
                conn.commit()
                self._state = self._writer_state(conn)
                conn.commit()
            self._written.clear()

    def close(self) -> None:
        with self._write_lock:
            conn, self._writer_conn, self._state = self._writer_conn, None, None
            if conn is None:
                return
            # What was not committed is dropped, as a Tantivy writer closed without commit.
            with contextlib.suppress(DBAPIError):
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key})
                conn.commit()
            conn.close()

    def refresh_statistics(self) -> None:
        """ANALYZE each table that took many rows here since its statistics were made (50
        and a tenth of what it held, autovacuum's rule), so that the planner knows a month
        filled by an import or a reindex as soon as it is searched, not after autovacuum's
        next round. The partitioned parent itself is not analyzed: each partition is
        planned from its own statistics, and ANALYZE of the parent would sample every
        partition again."""
        grown = [name for name, rows in self._written.items() if rows >= _ANALYZE_MIN_ROWS]
        if not grown:
            return
        try:
            with self.engine.connect() as conn:
                held: dict[str, float | None] = {
                    str(name): None if rows is None else float(rows)
                    for name, rows in conn.execute(text(
                        "SELECT name, (SELECT reltuples FROM pg_class "
                        "WHERE oid = to_regclass(name)) "
                        "FROM unnest(CAST(:names AS TEXT[])) AS name"), {"names": grown})}
                for name in sorted(grown):
                    rows = held.get(name)
                    if rows is None:
                        del self._written[name]  # gone (a reindex dropped it)
                        continue
                    # reltuples is -1 for a table never analyzed nor vacuumed.
                    if self._written[name] >= _ANALYZE_FRACTION * max(rows, 0.0):
                        conn.execute(text(f"ANALYZE {name}"))
                        conn.commit()
                        del self._written[name]
        except (DBAPIError, StorageFullError) as exc:
            raise self._write_error(exc) from exc

    def _row(self, doc: IndexDoc) -> dict[str, Any]:
        values: dict[str, Sequence[str]] = {
            "from": doc.from_, "to": doc.to, "cc": doc.cc, "bcc": doc.bcc,
            "subject": [doc.subject], "body": [doc.body], "attachment": [doc.attachment],
            "filename": doc.filename, "folder": doc.folder, "source": doc.source}
        row: dict[str, Any] = {
            "id": doc.id, "date": doc.date, "sort_date": doc.date or 0, "size": doc.size,
            "tier": _clean(doc.tier),
            "year": (str(datetime.fromtimestamp(doc.date, UTC).year)
                     if doc.date is not None else None),
            "msgid": _clean(doc.msgid.strip().strip("<>")),
            "has": sorted({_clean(v.lower()) for v in doc.has}),
            "tag": sorted({_clean(v.lower()) for v in doc.tag}),
            "fromdomain": sorted({_clean(v) for v in doc.from_domains}),
            "folderkey": sorted({_clean(v) for v in doc.folder if v}),
            "refs": sorted({_clean(v) for v in doc.refs}),
            "party": sorted({_clean(v) for v in doc.party}),
        }
        for name in TEXT_FIELDS:
            row[_tsv(name)] = self._tsvector(values[name])
        return row

    def _tsvector(self, values: Sequence[str]) -> str:
        """A tsvector literal of the words of these values of one field, at Tantivy's
        positions (from 1), each value a position after the one before."""
        positions: dict[str, list[int]] = {}
        start = 1
        for value in values:
            if not value:
                continue
            last = -1
            for position, word in positioned_words(self.analyzer, self._splitter,
                                                   spaced(value)):
                at = min(start + position, _MAX_POSITION)
                kept = positions.setdefault(word, [])
                if len(kept) < _MAX_POSITIONS and (not kept or kept[-1] != at):
                    kept.append(at)
                last = position
            start += last + 2
        return " ".join(f"{_quoted(word)}:{','.join(map(str, at))}"
                        for word, at in positions.items())

    # -- reading ---------------------------------------------------------------------------

    def search(self, node: q.Node, limit: int, offset: int = 0,
               order: str = "newest") -> tuple[int, list[int]]:
        total, ids, _ = self.search_counted(node, limit, offset, order)
        return total, ids

    def search_counted(self, node: q.Node, limit: int, offset: int = 0,
                       order: str = "newest", facets: int = 0, reach: bool = False
                       ) -> tuple[int, list[int], FacetCounts]:
        """(total, ids of the page in ``order`` with the message id breaking ties, facet
        counts): ``reach`` changes nothing here (no counts are kept between calls).

        The total is counted by partition; a page in date order is then read from the
        partitions that hold it alone, newest (or oldest) first, each asked for no more
        rows than the page still lacks. Total, page and facets are read in one snapshot."""
        if order not in _ORDERS:
            raise QueryError(f"results can be sorted {', '.join(_ORDERS)}, not {order!r}.")
        where, params = _Compiler(self).compile(node)
        with self._reading(snapshot=True) as conn:
            held = self._counts_by_table(conn, where, params)
            total = sum(held.values())
            ids: list[int] = []
            if limit > 0 and offset < total:
                ids = self._page(conn, where, params, held, limit, offset, order)
            counts = self._facets(conn, where, params, facets) if facets > 0 else {}
        return total, ids, counts

    @staticmethod
    def _counts_by_table(conn: Connection, where: str, params: dict[str, Any]
                         ) -> dict[str, int]:
        """How many matches each table (partition) holds, those holding any."""
        return {str(name): int(n) for name, n in conn.execute(text(
            f"SELECT c.relname, m.n FROM (SELECT tableoid AS t, count(*) AS n FROM {DOCUMENTS} "
            f"WHERE {where} GROUP BY tableoid) AS m JOIN pg_class AS c ON c.oid = m.t"), params)}

    @staticmethod
    def _page(conn: Connection, where: str, params: dict[str, Any], held: dict[str, int],
              limit: int, offset: int, order: str) -> list[int]:
        """The ids of one page: by date, from the partitions in date order, skipping those
        wholly before the offset and stopping once the page is full (no older partition
        can hold a newer message); by size (or over tables not of ours), in one query."""
        def read(table: str, take: int, skip: int) -> list[int]:
            return [int(i) for i in conn.execute(text(
                f"SELECT id FROM {table} WHERE {where} ORDER BY {_ORDERS[order]} "
                "LIMIT :_limit OFFSET :_offset"),
                {**params, "_limit": take, "_offset": skip}).scalars()]

        ordered = (partitions.in_order(held, newest_first=order == "newest")
                   if order in ("newest", "oldest") else None)
        if ordered is None:
            return read(DOCUMENTS, limit, offset)
        ids: list[int] = []
        skip = offset
        for partition in ordered:
            matches = held[partition.name]
            if skip >= matches:
                skip -= matches
                continue
            ids += read(partition.name, min(limit - len(ids), matches - skip), skip)
            skip = 0
            if len(ids) >= limit:
                break
        return ids

    def facet_counts(self, node: q.Node, size: int = 20) -> FacetCounts:
        where, params = _Compiler(self).compile(node)
        with self._reading() as conn:
            return self._facets(conn, where, params, size)

    @contextlib.contextmanager
    def _reading(self, snapshot: bool = False) -> Iterator[Connection]:
        """A connection for one search (``snapshot``: its statements all see the same
        committed state); a query the database refuses is a QueryError (as Tantivy's are),
        a database that fails a StoreError."""
        try:
            with self.engine.connect() as conn:
                if snapshot:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                yield conn
        except OperationalError as exc:
            raise StoreError(f"the search index cannot be read: {exc.orig}.") from exc
        except DBAPIError as exc:
            raise QueryError(f"the search failed: {str(exc.orig).splitlines()[0]}.") from exc

    @staticmethod
    def _count(conn: Connection, where: str, params: dict[str, Any]) -> int:
        return int(conn.execute(text(f"SELECT count(*) FROM {DOCUMENTS} WHERE {where}"),
                                params).scalar() or 0)

    @staticmethod
    def _facets(conn: Connection, where: str, params: dict[str, Any],
                size: int) -> FacetCounts:
        """Each facet's ``size`` most frequent values among the matches (ties by value), in
        one statement over the matches."""
        parts = []
        for name in FACET_FIELDS:
            values = f"unnest(m.{name})" if name in _ARRAYS else f"m.{name}"
            parts.append(
                f"(SELECT '{name}' AS facet, v, count(*) AS n FROM matched m, "
                f"LATERAL (SELECT {values} AS v) AS each WHERE v IS NOT NULL "
                f"GROUP BY v ORDER BY n DESC, v LIMIT :_size)")
        statement = (f"WITH matched AS MATERIALIZED (SELECT year, tier, fromdomain, "
                     f"folderkey, has FROM {DOCUMENTS} WHERE {where}) "
                     + " UNION ALL ".join(parts))
        counts: FacetCounts = {name: [] for name in FACET_FIELDS}
        for facet, value, count in conn.execute(text(statement), {**params, "_size": size}):
            counts[str(facet)].append((str(value), int(count)))
        for listed in counts.values():
            listed.sort(key=lambda pair: (-pair[1], pair[0]))
        return counts

    def count(self, node: q.Node) -> int:
        where, params = _Compiler(self).compile(node)
        with self._reading() as conn:
            return self._count(conn, where, params)

    def ids(self, node: q.Node, page: int = 10_000) -> Iterator[int]:
        """Every matching id, newest first, a page at a time after the last one read (on
        the index of (sort_date, id): no offset to skip; the bound on sort_date alone lets
        PostgreSQL leave out the partitions already read)."""
        where, params = _Compiler(self).compile(node)
        after: tuple[int, int] | None = None
        while True:
            bound = ("" if after is None else
                     " AND sort_date <= :_date AND (sort_date, id) < (:_date, :_id)")
            with self._reading() as conn:
                rows = conn.execute(text(
                    f"SELECT sort_date, id FROM {DOCUMENTS} WHERE ({where}){bound} "
                    "ORDER BY sort_date DESC, id DESC LIMIT :_limit"),
                    {**params, "_limit": page,
                     **({} if after is None else {"_date": after[0], "_id": after[1]})}).all()
            yield from (int(r[1]) for r in rows)
            if len(rows) < page:
                return
            after = (int(rows[-1][0]), int(rows[-1][1]))

    def referring(self, message_ids: Sequence[str], limit: int = 500) -> list[int]:
        wanted = sorted({m.strip().strip("<>") for m in message_ids if m.strip("<> ")})
        if not wanted:
            return []
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(text(
                f"SELECT id FROM {DOCUMENTS} WHERE refs && CAST(:refs AS TEXT[]) "
                "ORDER BY id LIMIT :_limit"), {"refs": wanted, "_limit": limit}).scalars()]

    def doc_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {DOCUMENTS}")).scalar() or 0)

    def ids_through(self, watermark: int, tier: str | None = None) -> list[int]:
        with self.engine.connect() as conn:
            if tier is None:
                return [int(i) for i in conn.execute(text(
                    f"SELECT id FROM {DOCUMENTS} WHERE id <= :w"), {"w": watermark}).scalars()]
            return [int(i) for i in conn.execute(text(
                f"SELECT id FROM {DOCUMENTS} WHERE id <= :w AND tier = :t"),
                {"w": watermark, "t": tier}).scalars()]

    def size_bytes(self) -> int:
        with self.engine.connect() as conn:
            # A partitioned table has no storage of its own: its partitions hold it all.
            return int(conn.execute(text(
                "SELECT sum(pg_total_relation_size(relid)) "
                f"FROM pg_partition_tree(to_regclass('{DOCUMENTS}'))")).scalar() or 0)


def _copy(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """The rows into the documents table with one COPY, in the connection's transaction
    (PostgreSQL routes each to its partition)."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.cursor() as cursor, cursor.copy(_COPY) as copy:
        for row in rows:
            copy.write_row([row[c] for c in _COLUMNS])


class _Compiler:
    """A query AST as a SQL condition over ``search_documents`` and its parameters. Every
    condition is true or false, never NULL, so that NOT turns matches into non-matches
    exactly as Tantivy's must-not does."""

    def __init__(self, index: PostgresIndex) -> None:
        self.index = index
        self.params: dict[str, Any] = {}

    def compile(self, node: q.Node) -> tuple[str, dict[str, Any]]:
        return self.node(node), self.params

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def node(self, node: q.Node) -> str:
        if isinstance(node, q.MatchAll):
            return "TRUE"
        if isinstance(node, q.Term):
            return self.term(node)
        if isinstance(node, q.DateRange):
            # sort_date equals date where there is one: bounding it too lets PostgreSQL
            # read only the month partitions of the range.
            parts = ["date IS NOT NULL"]
            if node.start is not None:
                start = self.param(int(node.start.timestamp()))
                parts += [f"date >= {start}", f"sort_date >= {start}"]
            if node.end is not None:
                end = self.param(int(node.end.timestamp()) - 1)
                parts += [f"date <= {end}", f"sort_date <= {end}"]
            return "(" + " AND ".join(parts) + ")"
        if isinstance(node, q.SizeRange):
            parts = []
            if node.above is not None:
                if node.above >= q.MAX_SIZE:
                    return "FALSE"  # no size is above the largest (nor fits a BIGINT)
                parts.append(f"size >= {self.param(node.above + 1)}")
            if node.below is not None:
                # As Tantivy's inclusive range: smaller:0 is "at most 0".
                parts.append(f"size <= {self.param(max(node.below - 1, 0))}")
            return "(" + " AND ".join(parts) + ")" if parts else "TRUE"
        if isinstance(node, q.Party):
            if not node.addresses:
                return "FALSE"
            return f"party && CAST({self.param(sorted(node.addresses))} AS TEXT[])"
        if isinstance(node, q.IdSet):
            if not node.ids:
                return "FALSE"
            return f"id = ANY(CAST({self.param(sorted(node.ids))} AS BIGINT[]))"
        if isinstance(node, q.HasAttachment):
            return "has @> ARRAY['attachment']"
        if isinstance(node, q.Not):
            return f"NOT ({self.node(node.child)})"
        if isinstance(node, q.And):
            return "(" + " AND ".join(self.node(c) for c in node.children) + ")"
        if isinstance(node, q.Or):
            return "(" + " OR ".join(self.node(c) for c in node.children) + ")"
        raise QueryError(f"unsupported query node {node!r}.")

    def term(self, term: q.Term) -> str:
        if term.field is not None and term.field not in _INDEX_FIELDS:
            raise QueryError(f"the index cannot answer '{term.field}:' by itself: the messages "
                             "it names must be looked up first.")
        if term.field in KEYWORD_FIELDS:
            return self.keyword(term.field, keyword_value(term), term.prefix)
        tokens = [str(t) for t in self.index.analyzer.analyze(spaced(term.text))]
        if not tokens:
            return "TRUE"  # no word to look for, as Tantivy: every message
        words = [_quoted(t) for t in tokens]
        if term.prefix:
            words[-1] += ":*"
        tsquery = self.param(" <-> ".join(words))
        fields = (term.field,) if term.field else DEFAULT_FIELDS
        return "(" + " OR ".join(f"{_tsv(f)} @@ CAST({tsquery} AS TSQUERY)"
                                 for f in fields) + ")"

    def keyword(self, field: str, value: str, prefix: bool) -> str:
        value = _clean(value)
        if field in _SCALARS:
            if prefix:
                return f"{field} LIKE {self.param(_like_prefix(value))}"
            return f"{field} = {self.param(value)}"
        if prefix:
            return (f"EXISTS (SELECT 1 FROM unnest({field}) AS v "
                    f"WHERE v LIKE {self.param(_like_prefix(value))})")
        return f"{field} @> ARRAY[CAST({self.param(value)} AS TEXT)]"
