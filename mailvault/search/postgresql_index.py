"""The search backend in PostgreSQL: full text in the catalog's own database.

Chosen by ``[search] backend = "postgresql"`` on a vault whose catalog is in PostgreSQL
(``init --catalog URL --search-backend postgresql``). One row a message in
``search_documents``: a ``tsvector`` column per text field, each with a GIN index, arrays for
the keyword fields (GIN where queries look values up), and the date, size and tier; a b-tree
on (sort_date, id) lets PostgreSQL walk the newest first and stop at the page's LIMIT when
the matches are many. ``search_state`` holds the marker (watermark, generation) and the
schema version.

Words are Tantivy's, not PostgreSQL's parser's: the default parser keeps
``alice@example.org`` or ``report.pdf`` as one token where Tantivy's ``simple`` tokenizer
splits them, so every text is split here by the very analyzer the Tantivy backend uses
(``index.text_analyzer``, at the positions it gives) and handed to PostgreSQL as a
``tsvector`` literal; queries are ``tsquery`` literals of the same words (``<->`` for a
phrase, ``:*`` for a prefix). The ``simple`` configuration is thus never asked to split.
Values of one field are a position apart, so a phrase never runs from one into the next.

The tables are derived data, like the index folder: they are made by this backend when it
first opens (not by the catalog's migrations, so an embedded vault never carries them) and
dropped and made again when their schema version changes; healing then fills them.

Limits PostgreSQL sets (docs/postgresql.md): positions stop at 16,383 (words past that are
found, phrases among them are not) and a word keeps its first 256 positions; a document
whose ``tsvector`` would pass 1 MB is refused and recorded as an index failure.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from mailvault.errors import QueryError, StorageFullError, StoreError, VaultError
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

SCHEMA_VERSION = 1
DOCUMENTS = "search_documents"
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
# The high half of the session lock the writer holds (the low half: the table's oid, so
# that vaults in several schemas of one database each have their own writer).
_LOCK_CLASS = 0x6D76_7378
_ORDERS = {"newest": "sort_date DESC, id DESC", "oldest": "sort_date ASC, id ASC",
           "largest": "size DESC, id DESC"}
_INDEX_FIELDS = frozenset({*TEXT_FIELDS, *KEYWORD_FIELDS, *FACET_FIELDS, "refs", "party"})


def _tsv(name: str) -> str:
    return f"t_{name}"


def _ddl() -> list[str]:
    tsvectors = ", ".join(f"{_tsv(n)} TSVECTOR NOT NULL" for n in TEXT_FIELDS)
    arrays = ", ".join(f"{n} TEXT[] NOT NULL" for n in _ARRAYS)
    statements = [
        f"CREATE TABLE {DOCUMENTS} (id BIGINT PRIMARY KEY, date BIGINT, "
        "sort_date BIGINT NOT NULL, size BIGINT NOT NULL, tier TEXT NOT NULL, year TEXT, "
        f"msgid TEXT NOT NULL, {arrays}, {tsvectors})",
        f"CREATE TABLE {STATE} (one INTEGER PRIMARY KEY CHECK (one = 1), "
        "schema INTEGER NOT NULL, watermark BIGINT, generation BIGINT)",
        f"INSERT INTO {STATE} (one, schema) VALUES (1, {SCHEMA_VERSION})",
        f"CREATE INDEX {DOCUMENTS}_newest ON {DOCUMENTS} (sort_date, id)",
        f"CREATE INDEX {DOCUMENTS}_largest ON {DOCUMENTS} (size, id)",
        f"CREATE INDEX {DOCUMENTS}_date ON {DOCUMENTS} (date)",
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
    return statements


_COLUMNS = ("id", "date", "sort_date", "size", "tier", "year", "msgid", *_ARRAYS,
            *(_tsv(n) for n in TEXT_FIELDS))
_CASTS = {**{n: "TEXT[]" for n in _ARRAYS}, **{_tsv(n): "TSVECTOR" for n in TEXT_FIELDS}}
_UPSERT = text(
    f"INSERT INTO {DOCUMENTS} ({', '.join(_COLUMNS)}) VALUES ("
    + ", ".join(f"CAST(:{c} AS {_CASTS[c]})" if c in _CASTS else f":{c}" for c in _COLUMNS)
    + ") ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c != "id"))


def _quoted(word: str) -> str:
    """A word as a quoted lexeme of a tsvector or tsquery literal."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _clean(value: str) -> str:
    # PostgreSQL's text holds no NUL; a query cannot type one either.
    return value.replace("\x00", "\ufffd")


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
        self._write_lock = threading.RLock()
        self._lock_key = self._prepare()

    @property
    def upgrade(self) -> str:
        return ""

    def _prepare(self) -> int:
        """Make the tables if they are missing or of another schema version; the key of the
        writer's lock."""
        with self.engine.begin() as conn:
            # One process makes them: the catalog's writer lock, for this transaction.
            database.serialize_writers(conn)
            version = None
            if conn.execute(text(f"SELECT to_regclass('{STATE}')")).scalar() is not None:
                version = conn.execute(text(f"SELECT schema FROM {STATE}")).scalar()
            if version != SCHEMA_VERSION:
                conn.execute(text(f"DROP TABLE IF EXISTS {DOCUMENTS}, {STATE}"))
                for statement in _ddl():
                    conn.execute(text(statement))
            oid = conn.execute(text(f"SELECT CAST(to_regclass('{DOCUMENTS}') AS oid)")).scalar()
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
                conn.commit()  # the session lock outlives the transaction that took it
            except BaseException:
                conn.close()
                raise
            self._writer_conn = conn
        return self._writer_conn

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
    def _writing(self) -> Iterator[Connection]:
        """The writer's connection, for one write; a failure of the database (a full disk, a
        lost connection) drops what was not committed and raises StoreError."""
        with self._write_lock:
            conn = self._writer()
            try:
                yield conn
            except (DBAPIError, StorageFullError) as exc:
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

    @staticmethod
    def _write_error(exc: Exception) -> StoreError:
        if isinstance(exc, StorageFullError) or (
                isinstance(exc, DBAPIError) and database.is_disk_full(exc.orig)):
            return StorageFullError("the disk is full: the search index cannot be written.")
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        return StoreError(f"the search index cannot be written: {reason}.")

    def put(self, docs: Sequence[IndexDoc], replace: bool = True) -> dict[int, str]:
        """Add (or replace: a message has one row) documents; not visible until commit().
        A document the database will not take is left out and returned, id -> reason."""
        rejected: dict[int, str] = {}
        rows = []
        for doc in docs:
            try:
                rows.append(self._row(doc))
            except Exception as exc:  # what the analyzer cannot take costs one document
                rejected[doc.id] = f"{type(exc).__name__}: {exc}"
        if not rows:
            return rejected
        with self._writing() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(_UPSERT, rows)
            except OperationalError:
                raise
            except (DBAPIError, ValueError):
                # One row spoiled the batch: each again on its own, to keep the others.
                for row in rows:
                    try:
                        with conn.begin_nested():
                            conn.execute(_UPSERT, [row])
                    except OperationalError:
                        raise
                    except (DBAPIError, ValueError) as exc:
                        reason = exc.orig if isinstance(exc, DBAPIError) else exc
                        rejected[int(row["id"])] = f"{type(reason).__name__}: {reason}"
        return rejected

    def delete(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._writing() as conn:
            conn.execute(text(f"DELETE FROM {DOCUMENTS} WHERE id = ANY(CAST(:ids AS BIGINT[]))"),
                         {"ids": list(ids)})

    def commit(self, watermark: int | None = None, generation: int | None = None) -> None:
        with self._writing() as conn:
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
        with self._write_lock:
            self._drop_uncommitted()  # whatever was added and not committed goes too
            with self._writing() as conn:
                conn.execute(text(f"TRUNCATE {DOCUMENTS}"))
                conn.execute(text(f"UPDATE {STATE} SET watermark = NULL, generation = NULL"))
                conn.commit()

    def close(self) -> None:
        with self._write_lock:
            conn, self._writer_conn = self._writer_conn, None
            if conn is None:
                return
            # What was not committed is dropped, as a Tantivy writer closed without commit.
            with contextlib.suppress(DBAPIError):
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key})
                conn.commit()
            conn.close()

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
        counts): ``reach`` changes nothing here (no counts are kept between calls)."""
        if order not in _ORDERS:
            raise QueryError(f"results can be sorted {', '.join(_ORDERS)}, not {order!r}.")
        where, params = _Compiler(self).compile(node)
        with self._reading() as conn:
            total = self._count(conn, where, params)
            ids: list[int] = []
            if limit > 0 and offset < total:
                ids = [int(i) for i in conn.execute(text(
                    f"SELECT id FROM {DOCUMENTS} WHERE {where} ORDER BY {_ORDERS[order]} "
                    "LIMIT :_limit OFFSET :_offset"),
                    {**params, "_limit": limit, "_offset": offset}).scalars()]
            counts = self._facets(conn, where, params, facets) if facets > 0 else {}
        return total, ids, counts

    def facet_counts(self, node: q.Node, size: int = 20) -> FacetCounts:
        where, params = _Compiler(self).compile(node)
        with self._reading() as conn:
            return self._facets(conn, where, params, size)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for one search; a query the database refuses is a QueryError (as
        Tantivy's are), a database that fails a StoreError."""
        try:
            with self.engine.connect() as conn:
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
        the index of (sort_date, id): no offset to skip)."""
        where, params = _Compiler(self).compile(node)
        after: tuple[int, int] | None = None
        while True:
            bound = "" if after is None else " AND (sort_date, id) < (:_date, :_id)"
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
            return int(conn.execute(text(
                f"SELECT pg_total_relation_size('{DOCUMENTS}')")).scalar() or 0)


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
            parts = ["date IS NOT NULL"]
            if node.start is not None:
                parts.append(f"date >= {self.param(int(node.start.timestamp()))}")
            if node.end is not None:
                parts.append(f"date <= {self.param(int(node.end.timestamp()) - 1)}")
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
