"""The full-text index (Tantivy): documents derived from the catalog, queries from the AST.

The index is derived data. Each document carries the message id; the catalog keeps a
watermark (the highest id whose document is committed) and a queue of messages whose
document must be rebuilt. A crash between catalog commit and index commit therefore heals
on the next start, and ``mailvault reindex`` rebuilds everything from store and catalog.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import tantivy

from mailvault.errors import QueryError, VaultError
from mailvault.search import query as q
from mailvault.search.document import IndexDoc, spaced
from mailvault.store import file_modes

ANALYZER = "mv"
DEFAULT_FIELDS = ("subject", "body", "attachment", "from", "to", "cc", "filename")
TEXT_FIELDS = ("from", "to", "cc", "bcc", "subject", "body", "attachment", "filename",
               "folder", "source")
KEYWORD_FIELDS = ("tier", "tag", "msgid", "has")
_LOCK_WAIT_S = 30.0
WRITER_LOCK = ".tantivy-writer.lock"  # Tantivy's writer holds an flock on this file


def _count(result: tantivy.SearchResult) -> int:
    # The binding's type stubs omit SearchResult.count, which search(count=True) fills.
    return int(getattr(result, "count", 0) or 0)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # Signed: the Python binding deletes by term only on signed integers.
    builder.add_integer_field("id", stored=True, indexed=True, fast=True)
    builder.add_integer_field("date", indexed=True, fast=True)
    builder.add_integer_field("sort_date", fast=True)
    builder.add_unsigned_field("size", indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=ANALYZER)
    for name in KEYWORD_FIELDS:
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    return builder.build()


def _analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(60))
            .filter(tantivy.Filter.lowercase())
            .build())


class SearchIndex:
    """One Tantivy index folder: a writer opened on demand, a searcher reloaded on demand."""

    def __init__(self, path: Path, heap_mb: int = 128) -> None:
        self.path = path
        self.heap_bytes = max(heap_mb, 16) * 1024 * 1024
        file_modes.make_folder(path)
        self.schema = _schema()
        try:
            self._index = tantivy.Index(self.schema, path=str(path), reuse=True)
        except (OSError, ValueError) as exc:
            raise VaultError(f"the index in {path} cannot be opened: {exc}.") from exc
        self.analyzer = _analyzer()
        self._index.register_tokenizer(ANALYZER, self.analyzer)
        self._writer: tantivy.IndexWriter | None = None
        # Under serve, the spool drain and the lifecycle pass share one writer from two
        # threads; the binding does not allow two calls on it at once.
        self._write_lock = threading.RLock()

    # -- writing ---------------------------------------------------------------------------

    def writer(self) -> tantivy.IndexWriter:
        """The index writer; waits for another process's writer to finish first."""
        if self._writer is None:
            deadline = time.monotonic() + _LOCK_WAIT_S
            while True:
                try:
                    self._writer = self._index.writer(self.heap_bytes, 1)
                    break
                except ValueError as exc:
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise VaultError(f"the index cannot be written: {exc}.") from exc
                    time.sleep(0.2)
        return self._writer

    def writer_busy(self) -> bool:
        """Whether another process (or index object) holds the writer now: a peek at the
        writer's lock file, without waiting and without taking it."""
        if self._writer is not None:
            return False
        try:
            fd = os.open(self.path / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False  # a read-only index: nobody writes it, and writer() will say why
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also releases the peek's own lock
        return False

    def put(self, docs: Sequence[IndexDoc], replace: bool = True) -> None:
        """Add documents, replacing any of the same id unless ``replace`` is False (for ids
        the index cannot have yet). Not visible until commit()."""
        with self._write_lock:
            writer = self.writer()
            for doc in docs:
                if replace:
                    writer.delete_documents_by_term("id", doc.id)
                writer.add_document(self._document(doc))

    def delete(self, ids: Sequence[int]) -> None:
        """Remove the documents of these messages (not visible until commit())."""
        with self._write_lock:
            writer = self.writer()
            for message_id in ids:
                writer.delete_documents_by_term("id", message_id)

    def commit(self) -> None:
        """Make added documents durable and searchable."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.commit()

    def close(self) -> None:
        """Release the writer (and its lock)."""
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    def clear(self) -> None:
        """Delete every document (for a full rebuild)."""
        self.close()
        shutil.rmtree(self.path)
        self.__init__(self.path, self.heap_bytes // (1024 * 1024))  # type: ignore[misc]

    def _document(self, doc: IndexDoc) -> tantivy.Document:
        d = tantivy.Document()
        d.add_integer("id", doc.id)
        if doc.date is not None:
            d.add_integer("date", doc.date)
        d.add_integer("sort_date", doc.date or 0)
        d.add_unsigned("size", doc.size)
        d.add_text("tier", doc.tier)
        for name, value in (("subject", doc.subject), ("body", doc.body),
                            ("attachment", doc.attachment)):
            if value:
                d.add_text(name, spaced(value))
        for name, values in (("from", doc.from_), ("to", doc.to), ("cc", doc.cc),
                             ("bcc", doc.bcc), ("filename", doc.filename),
                             ("folder", doc.folder), ("source", doc.source)):
            for value in values:
                if value:
                    d.add_text(name, spaced(value))
        if doc.msgid:
            d.add_text("msgid", doc.msgid.strip().strip("<>"))
        for name, values in (("has", doc.has), ("tag", doc.tag)):
            for value in values:
                d.add_text(name, value.lower())
        return d

    # -- reading ---------------------------------------------------------------------------

    def search(self, node: q.Node, limit: int, offset: int = 0) -> tuple[int, list[int]]:
        """(total matches, message ids newest first) for a query."""
        searcher = self._searcher()
        compiled = self.compile(node)
        try:
            result = searcher.search(compiled, limit=max(limit, 0), offset=offset, count=True,
                                     order_by_field="sort_date")
        except ValueError as exc:
            raise QueryError(f"the search failed: {exc}.") from exc
        ids = [searcher.doc(address)["id"][0] for _, address in result.hits]
        return _count(result), ids

    def count(self, node: q.Node) -> int:
        """How many messages match."""
        searcher = self._searcher()
        return _count(searcher.search(self.compile(node), limit=1, count=True))

    def ids(self, node: q.Node, page: int = 10_000) -> Iterator[int]:
        """Every matching message id, newest first, read a page at a time."""
        offset = 0
        while True:
            _, ids = self.search(node, limit=page, offset=offset)
            yield from ids
            if len(ids) < page:
                return
            offset += page

    def doc_count(self) -> int:
        return int(self._searcher().num_docs)

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def _searcher(self) -> tantivy.Searcher:
        self._index.reload()
        return self._index.searcher()

    # -- compiling the AST -----------------------------------------------------------------

    def compile(self, node: q.Node) -> tantivy.Query:
        """The Tantivy query for an AST node."""
        if isinstance(node, q.MatchAll):
            return tantivy.Query.all_query()
        if isinstance(node, q.Term):
            return self._term(node)
        if isinstance(node, q.DateRange):
            return tantivy.Query.range_query(
                self.schema, "date", tantivy.FieldType.Integer,
                int(node.start.timestamp()) if node.start else None,
                int(node.end.timestamp()) - 1 if node.end else None,
            )
        if isinstance(node, q.SizeRange):
            return tantivy.Query.range_query(
                self.schema, "size", tantivy.FieldType.Unsigned,
                node.above + 1 if node.above is not None else None,
                max(node.below - 1, 0) if node.below is not None else None,
            )
        if isinstance(node, q.IdSet):
            return tantivy.Query.term_set_query(self.schema, "id", sorted(node.ids))
        if isinstance(node, q.HasAttachment):
            return tantivy.Query.term_query(self.schema, "has", "attachment")
        if isinstance(node, q.Not):
            return tantivy.Query.boolean_query([
                (tantivy.Occur.Must, tantivy.Query.all_query()),
                (tantivy.Occur.MustNot, self.compile(node.child)),
            ])
        if isinstance(node, q.And):
            clauses = []
            for child in node.children:
                if isinstance(child, q.Not):
                    clauses.append((tantivy.Occur.MustNot, self.compile(child.child)))
                else:
                    clauses.append((tantivy.Occur.Must, self.compile(child)))
            if all(occur == tantivy.Occur.MustNot for occur, _ in clauses):
                clauses.append((tantivy.Occur.Must, tantivy.Query.all_query()))
            return tantivy.Query.boolean_query(clauses)
        if isinstance(node, q.Or):
            return tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, self.compile(c)) for c in node.children])
        raise QueryError(f"unsupported query node {node!r}.")

    def _term(self, term: q.Term) -> tantivy.Query:
        if term.field in KEYWORD_FIELDS:
            value = term.text.strip().strip("<>") if term.field == "msgid" else term.text.lower()
            if term.prefix:
                return tantivy.Query.regex_query(self.schema, term.field, re.escape(value) + ".*")
            return tantivy.Query.term_query(self.schema, term.field, value)
        tokens: list[str | tuple[int, str]] = list(self.analyzer.analyze(spaced(term.text)))
        if not tokens:
            return tantivy.Query.all_query()
        fields = (term.field,) if term.field else DEFAULT_FIELDS
        queries = [self._field_query(f, tokens, term.prefix) for f in fields]
        if len(queries) == 1:
            return queries[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, x) for x in queries])

    def _field_query(self, name: str, tokens: list[str | tuple[int, str]],
                     prefix: bool) -> tantivy.Query:
        if len(tokens) == 1:
            word = str(tokens[0])
            if prefix:
                return tantivy.Query.regex_query(self.schema, name, re.escape(word) + ".*")
            return tantivy.Query.term_query(self.schema, name, word, index_option="freq")
        if prefix:
            return tantivy.Query.phrase_prefix_query(self.schema, name, tokens)
        return tantivy.Query.phrase_query(self.schema, name, tokens)
