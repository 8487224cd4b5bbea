"""The full-text index (Tantivy): documents derived from the catalog, queries from the AST.

The embedded default of the two search backends (``backend.SearchBackend``).

The index is derived data. Each document carries the message id; the catalog keeps a
watermark (the highest id whose document is committed) and a queue of messages whose
document must be rebuilt. The index folder carries its own record of what it holds (the
marker, written after each commit), so a folder put back from an older copy is found out
when it is opened (``indexing.py`` heals it). A crash between catalog commit and index
commit heals on the next start, and ``mailvault reindex`` rebuilds everything.

A failed write (a full disk) kills Tantivy's writer and loses what it had not committed; the
writer is then replaced and the failure raised as a StoreError, so callers never count the
lost documents as indexed.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tantivy

from mailvault.errors import QueryError, StorageFullError, StoreError, VaultError
from mailvault.search import query as q
from mailvault.search.backend import FacetCounts, IndexMarker
from mailvault.search.document import IndexDoc, spaced
from mailvault.store import file_modes

ANALYZER = "mv"
DEFAULT_FIELDS = ("subject", "body", "attachment", "from", "to", "cc", "filename")
TEXT_FIELDS = ("from", "to", "cc", "bcc", "subject", "body", "attachment", "filename",
               "folder", "source")
KEYWORD_FIELDS = ("tier", "tag", "msgid", "has", "fromdomain")
# Keyword fields kept as fast fields too, so that facets count them (``facet_counts``).
FACET_FIELDS = ("year", "fromdomain", "folderkey", "tier", "has")
# Participant fields whose values are also indexed as word runs (``word_runs``): every
# run of 2 to RUN_WORDS adjacent words of one value, as one raw term, so that a phrase over
# the field (``from:phillip.allen``, ``cc:enron.com``, ``from:"Phillip Allen"``) is one term
# query with exactly the phrase's matches instead of a walk over the positions of its words.
RUN_FIELDS = {"from": "fromrun", "to": "torun", "cc": "ccrun", "bcc": "bccrun"}
RUN_WORDS = 5
# How many participant values' runs are kept between documents (``_value_runs``): a value and
# its runs take a few hundred bytes, so a few MB at most.
RUN_CACHE_VALUES = 20_000
# Prefix queries kept built, by field and word (``_prefix_query``), at most this many.
PREFIX_QUERIES_KEPT = 256
# (date, id) in one unsigned fast column (``order_key``): the newest and oldest orders with
# ties broken by the message id, which Tantivy's top-N collector then gives by itself,
# exactly, at a fraction of an aggregation's cost per match. Dates take the high
# ORDER_DATE_BITS (seconds from 1970; message.py keeps dates to 2200, under 2**33), the id
# the low ORDER_ID_BITS.
ORDER_KEY = "order"
ORDER_DATE_BITS = 33
ORDER_ID_BITS = 31
# Each dated message's UTC day number (``Layout.days``).
DAY_FIELD = "day"
DAY_S = 86_400
# A date range beside a clause known to match under this share of the documents reads the
# date column instead of the day numbers (``_beside_narrow``).
DAY_TERMS_SHARE = 0.25


@dataclass(frozen=True)
class Layout:
    """What an index folder of one schema version holds, and so how a query is compiled
    for it. The version is written into the marker."""

    version: int
    # The word runs (RUN_FIELDS) beside From/To/Cc/Bcc.
    word_runs: bool
    # The ORDER_KEY column (else newest and oldest sort by "sort_date", ties by an
    # aggregation's second sort key).
    order_key: bool
    # Nothing kept that no query reads: no stored document (ids are read from their fast
    # column), dates and sizes as fast columns only (range queries read those, never the
    # terms an indexed number adds), and no field norms (nothing is ranked by relevance).
    lean: bool
    # The UTC day number of the date, indexed (DAY_FIELD): a range of whole days, what
    # after:, before: and on: ask, is then a union of the days' postings, which Tantivy
    # intersects with the other clauses by skipping, where the date column is read for
    # every candidate.
    days: bool = False


# An index folder built with a schema not listed here (an older mailvault) is emptied when
# opened and rebuilt by healing. One of a listed older layout is kept, answering every query
# as before (phrases over From/To/Cc/Bcc by their positions without the word runs, results
# sorted without the order key) until `mailvault reindex` builds it again.
LAYOUTS = {
    3: Layout(3, word_runs=False, order_key=False, lean=False),
    4: Layout(4, word_runs=True, order_key=False, lean=False),
    5: Layout(5, word_runs=True, order_key=True, lean=True),
    6: Layout(6, word_runs=True, order_key=True, lean=True, days=True),
}
SCHEMA_VERSION = 6
PHRASE_SCHEMA_VERSION = 3
_LOCK_WAIT_S = 30.0
WRITER_LOCK = ".tantivy-writer.lock"  # Tantivy's writer holds an flock on this file
MARKER_FILE = "mailvault-index.json"
# A write that fails with less free space than this is reported as a full disk: Tantivy's
# error ("an index writer was killed") does not say why its worker thread failed.
LOW_SPACE_BYTES = 64 * 1024 * 1024


# (total matches, facet counts, the ids of a page of hits).
_Counted = tuple[int, FacetCounts, list[int]]


# The names of the aggregations beside the facets (not field names): the page of hits, and
# how the matches spread over the order's column.
_HITS = "_hits"
_SPREAD = "_spread"
# Pages of hits up to this far down, of a query that matches at most ``broad_matches``
# messages, are sorted in the aggregation that counts the matches (one pass); a deeper
# page, or a broader query, is sorted within a window of the order (``_page``).
_ONE_PASS_HITS = 1_000
# An index of at least this many documents has a broad query's page searched in parts, one
# a thread (``_top``); below it the threads cost more than they save.
SPLIT_DOCS = 250_000
# Nor is a query known to match fewer messages than this (``_worth_splitting``).
SPLIT_MATCHES = 50_000
# How many parts at most, whatever the machine.
MAX_SEARCH_THREADS = 4
# A page whose total is known comes first from the newest days (``_newest_page``): the
# order keys of this many newest documents are kept to choose how many days, and the days
# chosen hold about NEWEST_SPARE times the page's share of the matches.
NEWEST_KEPT = 4096
NEWEST_SPARE = 4
# How many principals' reach counts are kept (each is a few hundred bytes).
_REACH_KEPT = 256
# The spread of the matches over dates, in weeks: a page of hits is then sorted among the
# matches of the newest (or oldest) weeks that hold it, not among all of them. Dates are
# kept from 1970 to 2200 only (``message.py``): at most 12,000 weeks, under the 65,000
# buckets past which Tantivy aborts an aggregation.
_WEEK_S = 7 * 86_400
# The spread over sizes, in ranges growing by half: sizes span seven orders of magnitude.
_SIZE_EDGES = (0, *(int(256 * 1.5 ** n) for n in range(44)))

SORT_ORDERS = {
    "newest": ("sort_date", tantivy.Order.Desc),
    "oldest": ("sort_date", tantivy.Order.Asc),
    "largest": ("size", tantivy.Order.Desc),
}


class _ReachCounts:
    """The facet counts of principals' whole reach (what an empty query shows them: all
    mail for an auditor, their own mail for a user), per index generation. A search page
    opens on that query, and over a million messages its counts cost tens of milliseconds
    each time while they change only when the index does. Exact: an entry is used only for
    the very generation (meta.json) it was counted at, so a commit invalidates it."""

    def __init__(self) -> None:
        self._kept: dict[tuple[q.Node, int], tuple[bytes, _Counted]] = {}
        # serve's web routes run in a thread pool.
        self._lock = threading.Lock()

    def get(self, key: tuple[q.Node, int], generation: bytes) -> _Counted | None:
        """The counts kept for (query, values per facet) at this generation, if any."""
        with self._lock:
            kept = self._kept.get(key)
        if kept is None or kept[0] != generation:
            return None
        total, counts, ids = kept[1]
        # Copies: a caller may keep or change what it is given.
        return total, {name: list(values) for name, values in counts.items()}, list(ids)

    def put(self, key: tuple[q.Node, int], generation: bytes, counted: _Counted) -> None:
        """Keep these counts, dropping the oldest kept when there are too many."""
        with self._lock:
            self._kept.pop(key, None)
            while len(self._kept) >= _REACH_KEPT:
                del self._kept[next(iter(self._kept))]
            self._kept[key] = (generation, counted)


def _spread(result: dict[str, Any] | None) -> list[tuple[int, int | None, int]]:
    """(low, high, count) of each non-empty bucket of a histogram or range aggregation over
    an integer column, lowest first; high is excluded, None when unbounded."""
    spread: list[tuple[int, int | None, int]] = []
    for bucket in (result or {}).get("buckets", []):
        count = int(bucket["doc_count"])
        if count == 0:
            continue
        if isinstance(bucket["key"], str):
            # A range's bucket ("256-384"): its bounds, where it has them (the first range
            # starts at 0, the last has no end).
            low = int(bucket.get("from", 0))
            high = int(bucket["to"]) if "to" in bucket else None
        else:
            low = int(bucket["key"])  # a histogram's bucket: a week from its key
            high = low + _WEEK_S
        spread.append((low, high, count))
    return spread


def _ends_before(node: q.Node, moment: int) -> bool:
    """Whether the query asks for messages dated before ``moment`` (seconds) only: it is, or
    is a conjunction with, a range of dates that ends by then."""
    if isinstance(node, q.DateRange):
        return node.end is not None and node.end.timestamp() <= moment
    return isinstance(node, q.And) and any(_ends_before(c, moment) for c in node.children)


def keyword_value(term: q.Term) -> str:
    """The indexed form of a keyword field's value (a Message-ID without its brackets)."""
    return term.text.strip().strip("<>") if term.field == "msgid" else term.text.lower()


def _empty_folder(path: Path) -> None:
    # The folder's contents, not the folder: it may be a mount point of its own.
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _count(result: tantivy.SearchResult) -> int:
    # The binding's type stubs omit SearchResult.count, which search(count=True) fills.
    return int(getattr(result, "count", 0) or 0)


def layout_schema(layout: Layout) -> tantivy.Schema:
    """The Tantivy schema of an index folder of this layout."""
    builder = tantivy.SchemaBuilder()
    # Signed: the Python binding deletes by term only on signed integers.
    builder.add_integer_field("id", stored=not layout.lean, indexed=True, fast=True)
    builder.add_integer_field("date", indexed=not layout.lean, fast=True)
    if layout.order_key:
        builder.add_unsigned_field(ORDER_KEY, fast=True)
    else:
        builder.add_integer_field("sort_date", fast=True)
    builder.add_unsigned_field("size", indexed=not layout.lean, fast=True)
    if layout.days:
        builder.add_integer_field(DAY_FIELD, indexed=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=ANALYZER)
    for name in _keyword_fields(layout):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic",
                               fast=name in FACET_FIELDS)
    return builder.build()


def _keyword_fields(layout: Layout) -> tuple[str, ...]:
    # "refs": the Message-IDs a message replies to (In-Reply-To, References), for threads.
    # "party": every address party to the message (own-mail scoping, query.Party).
    extra = tuple(n for n in (*FACET_FIELDS, "refs", "party") if n not in KEYWORD_FIELDS)
    return KEYWORD_FIELDS + extra + (tuple(RUN_FIELDS.values()) if layout.word_runs else ())


def _expected_fields(layout: Layout) -> dict[str, bool]:
    """Field name -> fast, as layout_schema() declares them (compared with an index
    folder's)."""
    fields = {"id": True, "date": True, ORDER_KEY if layout.order_key else "sort_date": True,
              "size": True}
    if layout.days:
        fields[DAY_FIELD] = False
    fields.update((name, False) for name in TEXT_FIELDS)
    fields.update((name, name in FACET_FIELDS) for name in _keyword_fields(layout))
    return fields


def _opened(path: Path, layout: Layout) -> tantivy.Index:
    """The Tantivy index in ``path`` (a folder of ``layout`` or an empty one, created)."""
    if not layout.lean:
        return tantivy.Index(layout_schema(layout), path=str(path), reuse=True)
    if _folder_fields(path) is None:
        tantivy.Index(layout_schema(layout), path=str(path), reuse=True)
        # The binding declares field norms on every text field and offers no switch; a
        # folder without segments yet takes them out of its schema in meta.json, which is
        # Tantivy's own (serialized) schema, read back as it is by Index.open.
        meta_path = path / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        for entry in meta["schema"]:
            indexing = entry.get("options", {}).get("indexing")
            if indexing is not None:
                indexing["fieldnorms"] = False
        file_modes.write_replacing(meta_path, json.dumps(meta, indent=2).encode("utf-8"))
    return tantivy.Index.open(str(path))


def order_key(doc: IndexDoc) -> int:
    """The ORDER_KEY of a document: its date (0 when it has none, as the newest and oldest
    orders sort it) above its id. A date outside the column's range is held to its edge."""
    if not 0 <= doc.id < 1 << ORDER_ID_BITS:
        raise ValueError(f"message id {doc.id} is beyond the index's order key")
    date = min(max(doc.date or 0, 0), (1 << ORDER_DATE_BITS) - 1)
    return date << ORDER_ID_BITS | doc.id


def _folder_fields(path: Path) -> dict[str, bool] | None:
    """Field name -> fast, as the index folder's meta.json has them (None: no index yet)."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        return {f["name"]: bool(f.get("options", {}).get("fast")) for f in meta["schema"]}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VaultError(f"the index in {path} cannot be read: {exc}.") from exc


# Words of this many bytes or more are left out of the text fields (``text_analyzer``).
LONG_WORD = 60


def text_analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(LONG_WORD))
            .filter(tantivy.Filter.lowercase())
            .build())


def word_splitter() -> tantivy.TextAnalyzer:
    """The analyzer's words as written, long ones included: where a long word was left
    out, the words on either side are not adjacent for a phrase."""
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).build()


def positioned_words(analyzer: tantivy.TextAnalyzer, splitter: tantivy.TextAnalyzer,
                     text: str) -> Iterator[tuple[int, str]]:
    """(position, word) of each word the analyzer indexes in ``text``, at the position
    Tantivy gives it: a long word left out keeps its place, so the words on either side
    are not adjacent (what another backend needs to answer phrases as this one does)."""
    kept = iter(analyzer.analyze(text))
    for position, written in enumerate(splitter.analyze(text)):
        if 0 < len(written.encode("utf-8")) < LONG_WORD:
            yield position, str(next(kept))


class SearchIndex:
    """One Tantivy index folder: a writer opened on demand, a searcher reloaded on demand."""

    def __init__(self, path: Path, heap_mb: int = 128, threads: int = 0) -> None:
        self.path = path
        self.heap_bytes = max(heap_mb, 16) * 1024 * 1024
        # How many parts one search may be split into (``_top``), each on its own thread:
        # 0 means one per core.
        self.threads = min(threads or os.cpu_count() or 1, MAX_SEARCH_THREADS)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()  # serve's routes search from several threads
        # Pages and counts being searched now, from every thread (``_searching``).
        self._searches = 0
        # The order keys of the newest documents, newest first (``_newest_page``): read
        # once, kept while they still choose days that hold enough.
        self._newest: list[int] | None = None
        file_modes.make_folder(path)
        self._writer: tantivy.IndexWriter | None = None
        self.layout = self._folder_layout()
        self.schema_version = self.layout.version
        # Whether the folder holds the word runs (RUN_FIELDS): one built by an older
        # mailvault does not, and answers phrases over those fields by positions.
        self.word_runs = self.layout.word_runs
        try:
            self._index = _opened(path, self.layout)
        except (OSError, ValueError) as exc:
            raise VaultError(f"the index in {path} cannot be opened: {exc}.") from exc
        self.schema = self._index.schema
        self.analyzer = text_analyzer()
        self._splitter = word_splitter()
        # Word runs by participant value (``_value_runs``), used under the write lock.
        self._run_cache: dict[str, tuple[str, ...]] = {}
        # Prefix queries by (field, word): their automaton costs 0.5-0.7 ms a field to build.
        self._prefixes: dict[tuple[str, str], tantivy.Query] = {}
        self._index.register_tokenizer(ANALYZER, self.analyzer)
        # How many writers failed and were replaced: documents added before a replacement
        # were lost with the old writer, whoever added them.
        self.lost_writers = 0
        # Under serve, the spool drain and the lifecycle pass share one writer from two
        # threads; the binding does not allow two calls on it at once.
        self._write_lock = threading.RLock()
        self._reach_counts = _ReachCounts()
        # A query known to match at most this many messages (``_most``) is sorted in one
        # pass; a broader one has its page of hits sorted within a window of the order:
        # sorting every match costs more than evaluating the query again over the
        # window's few. Below 0, every query counts as broad (tests of both ways).
        self.broad_matches = 300_000

    def _folder_layout(self) -> Layout:
        """The layout to open the folder with: the newest, or an older one kept (see
        LAYOUTS). A folder built with any other schema (its marker names another version,
        or its fields differ) is emptied: healing then fills it from the catalog, as a new
        folder."""
        fields = _folder_fields(self.path)
        if fields is None:
            return LAYOUTS[SCHEMA_VERSION]
        written = self._marker_schema()
        for layout in LAYOUTS.values():
            if fields == _expected_fields(layout) and written in (None, layout.version):
                return layout
        if self.writer_busy():
            raise VaultError(f"the index in {self.path} was built by another version of "
                             "mailvault and another process is writing it: stop that process "
                             "(mailvault serve) so that the index can be rebuilt.")
        _empty_folder(self.path)
        return LAYOUTS[SCHEMA_VERSION]

    @property
    def location(self) -> str:
        """The index folder."""
        return str(self.path)

    @property
    def upgrade(self) -> str:
        """What a rebuild would bring this folder ('' when it has the current schema)."""
        if not self.layout.word_runs:
            return ("the index was built by an older mailvault: from:, to:, cc: and bcc: "
                    "searches of several words are slower until 'mailvault reindex' "
                    "rebuilds it")
        if not self.layout.lean:
            return ("the index was built by an older mailvault: it takes more disk, and "
                    "searches of many messages are slower, until 'mailvault reindex' "
                    "rebuilds it")
        if self.layout.version != SCHEMA_VERSION:
            return ("the index was built by an older mailvault: searches by date (after:, "
                    "before:, on:) are slower until 'mailvault reindex' rebuilds it")
        return ""

    def _marker_schema(self) -> int | None:
        try:
            data = json.loads((self.path / MARKER_FILE).read_text(encoding="utf-8"))
            return int(data.get("schema", 1))
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    # -- writing ---------------------------------------------------------------------------

    def writer(self) -> tantivy.IndexWriter:
        """The index writer; waits for another process's writer to finish first."""
        if self._writer is None:
            deadline = time.monotonic() + _LOCK_WAIT_S
            while True:
                try:
                    self._writer = self._new_writer()
                    break
                except ValueError as exc:
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise VaultError(f"the index cannot be written: {exc}.") from exc
                    time.sleep(0.2)
        return self._writer

    def _new_writer(self) -> tantivy.IndexWriter:
        """A writer (raises ValueError while another holds the lock), once it has removed
        what a writer killed inside its commit left: files that meta.json does not name.
        Tantivy names a segment's deletions by the commit's opstamp, and the next writer
        starts from the opstamp meta.json has, so it would write the same name, fail with
        FileAlreadyExists on every commit, and the index would keep documents of disposed
        messages for good."""
        writer = self._index.writer(self.heap_bytes, 1)
        # Best effort: a failure here is met again, and reported, by the write it affects.
        with contextlib.suppress(ValueError):
            writer.garbage_collect_files()
        return writer

    def hold_writer(self) -> None:
        """Take the writer now, as the first write would (waiting for another process's)."""
        with self._write_lock:
            self.writer()

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

    @contextlib.contextmanager
    def _writing(self) -> Iterator[tantivy.IndexWriter]:
        """The writer, for one write; a failure replaces the writer and raises StoreError."""
        with self._write_lock:
            writer = self.writer()
            try:
                yield writer
            except Exception as exc:
                self._replace_writer()
                raise self._write_error(exc) from exc

    def _replace_writer(self) -> None:
        # A failed write kills Tantivy's writer for good: every later commit would "succeed"
        # without the documents it lost. Drop it (its uncommitted documents are gone) and take
        # a new one at once, so that the writer's lock stays with this process.
        self._writer = None
        self.lost_writers += 1
        with contextlib.suppress(ValueError):
            self._writer = self._new_writer()

    def _writer_failed(self, exc: Exception) -> bool:
        # The writer itself failing (a killed writer, an I/O error, a nearly full disk) is
        # not the document's fault: every document after it would fail the same way.
        return (isinstance(exc, OSError) or "killed" in str(exc).lower()
                or self._free_bytes() < LOW_SPACE_BYTES)

    def _free_bytes(self) -> int:
        try:
            info = os.statvfs(self.path)
        except OSError:
            return 0
        return info.f_bavail * info.f_frsize

    def _write_error(self, exc: Exception) -> StoreError:
        text = str(exc)
        free = self._free_bytes()
        if "no space" in text.lower() or "storagefull" in text.lower() or free < LOW_SPACE_BYTES:
            return StorageFullError(f"the disk is full: the index in {self.path} cannot be "
                                    "written.")
        return StoreError(f"the index in {self.path} cannot be written: {text}.")

    def put(self, docs: Sequence[IndexDoc], replace: bool = True) -> dict[int, str]:
        """Add documents, replacing any of the same id unless ``replace`` is False (for ids
        the index cannot have yet). Not visible until commit().

        A document the index will not take (a value the binding cannot convert, an error
        inside Tantivy) is left out and returned, id -> reason: one message must cost its
        own searchability, never the batch around it. A writer that fails (a full disk)
        fails the whole call with StoreError, since no document of it was kept.
        """
        rejected: dict[int, str] = {}
        with self._writing() as writer:
            for doc in docs:
                if replace:
                    writer.delete_documents_by_term("id", doc.id)
                try:
                    writer.add_document(self._document(doc))
                except Exception as exc:
                    if self._writer_failed(exc):
                        raise
                    rejected[doc.id] = f"{type(exc).__name__}: {exc}"
                except BaseException as exc:
                    # A Rust panic reaches Python as pyo3's PanicException, which derives
                    # from BaseException; everything else of that kind (Ctrl-C) goes on.
                    if type(exc).__name__ != "PanicException":
                        raise
                    rejected[doc.id] = f"the index library failed: {exc}"
        return rejected

    def delete(self, ids: Sequence[int]) -> None:
        """Remove the documents of these messages (not visible until commit())."""
        with self._writing() as writer:
            for message_id in ids:
                writer.delete_documents_by_term("id", message_id)

    def commit(self, watermark: int | None = None, generation: int | None = None) -> None:
        """Make added documents durable and searchable, then record in the marker what the
        index now holds (a value not given stays as the marker has it; without a marker both
        must be given). A StoreError means that nothing since the last commit is indexed."""
        with self._writing() as writer:
            writer.commit()
        if watermark is None and generation is None:
            return
        current = self.marker()
        if watermark is None or generation is None:
            if current is None:
                return  # what the index holds is not known yet: healing writes the marker
            watermark = current.watermark if watermark is None else watermark
            generation = current.generation if generation is None else generation
        self._write_marker(IndexMarker(watermark, generation))

    def marker(self) -> IndexMarker | None:
        """The index's own record of what it holds (None: no marker, or an unreadable one)."""
        try:
            data = json.loads((self.path / MARKER_FILE).read_text(encoding="utf-8"))
            return IndexMarker(int(data["watermark"]), int(data["generation"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_marker(self, marker: IndexMarker) -> None:
        path = self.path / MARKER_FILE
        temporary = path.with_suffix(".tmp")
        data = json.dumps({"watermark": marker.watermark, "generation": marker.generation,
                           "schema": self.schema_version})
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise self._write_error(exc) from exc

    def close(self) -> None:
        """Release the writer (and its lock) and the threads of split searches."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        if self._writer is not None:
            # A writer killed by a failed write reports that failure again here; what it had
            # not committed is lost either way, and healing redoes it.
            with contextlib.suppress(ValueError):
                self._writer.wait_merging_threads()
            self._writer = None

    def refresh_statistics(self) -> None:
        """Nothing to do: Tantivy plans no searches from statistics."""

    def clear(self) -> None:
        """Delete every document and the marker (for a full rebuild)."""
        self.close()
        _empty_folder(self.path)
        lost = self.lost_writers + 1  # whatever was added and not committed went too
        self.__init__(self.path, self.heap_bytes // (1024 * 1024),  # type: ignore[misc]
                      self.threads)
        self.lost_writers = lost

    def _document(self, doc: IndexDoc) -> tantivy.Document:
        d = tantivy.Document()
        d.add_integer("id", doc.id)
        if doc.date is not None:
            d.add_integer("date", doc.date)
            if self.layout.days:
                d.add_integer(DAY_FIELD, doc.date // DAY_S)
        if self.layout.order_key:
            d.add_unsigned(ORDER_KEY, order_key(doc))
        else:
            d.add_integer("sort_date", doc.date or 0)
        d.add_unsigned("size", doc.size)
        d.add_text("tier", doc.tier)
        if doc.date is not None:
            d.add_text("year", str(datetime.fromtimestamp(doc.date, UTC).year))
        for domain in sorted(set(doc.from_domains)):
            d.add_text("fromdomain", domain)
        for folder in doc.folder:
            if folder:
                d.add_text("folderkey", folder)
        for ref in doc.refs:
            d.add_text("refs", ref)
        for address in doc.party:
            d.add_text("party", address)
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
            if self.word_runs and name in RUN_FIELDS:
                for run in sorted({r for v in values if v for r in self._value_runs(v)}):
                    d.add_text(RUN_FIELDS[name], run)
        if doc.msgid:
            d.add_text("msgid", doc.msgid.strip().strip("<>"))
        for name, values in (("has", doc.has), ("tag", doc.tag)):
            for value in values:
                d.add_text(name, value.lower())
        return d

    def _value_runs(self, value: str) -> tuple[str, ...]:
        """The word runs of one participant value, kept for the values seen most (the
        same senders and recipients come back message after message)."""
        runs = self._run_cache.get(value)
        if runs is None:
            # Emptied when full: a batch's values are mostly those of the batches before.
            if len(self._run_cache) >= RUN_CACHE_VALUES:
                self._run_cache.clear()
            runs = self._run_cache[value] = tuple(self._runs(spaced(value)))
        return runs

    def _runs(self, text: str) -> Iterator[str]:
        """Every run of 2 to RUN_WORDS adjacent words of one value, as the analyzer indexes
        them (lower case), joined by spaces: what a phrase of those words matches. A long
        word the analyzer leaves out separates runs, as it keeps a phrase from matching
        across it; a value's runs never continue into the next value's (nor do phrases)."""
        kept = iter(self.analyzer.analyze(text))
        words: list[str] = []
        for written in [*self._splitter.analyze(text), ""]:
            if 0 < len(written.encode("utf-8")) < LONG_WORD:
                words.append(str(next(kept)))
                continue
            for start in range(len(words) - 1):
                run = words[start]
                for word in words[start + 1:start + RUN_WORDS]:
                    run = f"{run} {word}"
                    yield run
            words = []

    # -- reading ---------------------------------------------------------------------------

    def search(self, node: q.Node, limit: int, offset: int = 0,
               order: str = "newest") -> tuple[int, list[int]]:
        """(total matches, message ids in ``order``: newest, oldest or largest first)."""
        total, ids, _ = self.search_counted(node, limit, offset, order)
        return total, ids

    def search_counted(self, node: q.Node, limit: int, offset: int = 0,
                       order: str = "newest", facets: int = 0, reach: bool = False
                       ) -> tuple[int, list[int], dict[str, list[tuple[str, int]]]]:
        """(total matches, message ids in ``order``, facet counts): the matches ordered by
        the order's column and then by message id (the same order on every page, for the
        API and the pages alike), and when ``facets`` is more than 0, ``facet_counts``
        with that many values per facet.

        With the order key (``Layout.order_key``), a page newest or oldest first comes
        from Tantivy's top-N collector over that column, which breaks ties by id itself
        (several times cheaper per match than an aggregation's sort), and the facets, if
        asked for, from an aggregation without hits. Otherwise (the largest first, or an
        older layout) one aggregation counts the total, the facets and the page of hits in
        one pass over the matches (a separate search and facet count evaluated a broad
        phrase twice); a query known to be broad, or a deep page, has its page sorted
        afterwards within a window of the order (``_page``), since sorting 600,000 matches
        cost more than evaluating the query again over a few thousand. ``reach``: the
        query is everything a principal may see (an empty query, scoped), whose facet
        counts are kept for this index generation (``_ReachCounts``) and counted again
        after any commit, and whose hits come from the top-N collector (``_top_page``):
        every page of it, API or search page, in the same order (in an older layout,
        messages of the same date follow the index's order there)."""
        if order not in SORT_ORDERS:
            raise QueryError(f"results can be sorted {', '.join(SORT_ORDERS)}, not {order!r}.")
        generation = self._generation() if reach and facets > 0 else None
        searcher = self._searcher()
        compiled = self.compile(node)
        page = (limit, offset, order)
        if reach:
            known = (self._reach_known(searcher, compiled, (node, facets), generation)
                     if generation is not None else None)
            return self._top_page(searcher, node, compiled, known, page)
        if self._keyed(order):
            known = (self._aggregate(searcher, compiled, facets, None)[:2] if facets > 0
                     else None)
            return self._top_page(searcher, node, compiled, known, page)
        if limit <= 0:
            total, counts, _, _ = self._aggregate(searcher, compiled, facets, None)
            return total, [], counts
        most = self._most(searcher, node)
        broad = self.broad_matches < 0 or (most is not None and most > self.broad_matches)
        one_pass = offset + limit <= _ONE_PASS_HITS and not broad
        total, counts, spread, ids = self._aggregate(
            searcher, compiled, facets, (offset + limit, order, one_pass))
        if one_pass:
            return total, ids[offset:], counts
        if offset < total:
            ids = self._page(searcher, node, spread, (limit, offset, order))
        return total, ids, counts

    def _keyed(self, order: str) -> bool:
        """Whether pages in this order come from the order key's column."""
        return self.layout.order_key and order in ("newest", "oldest")

    def _reach_known(self, searcher: tantivy.Searcher, compiled: tantivy.Query,
                     key: tuple[q.Node, int], generation: bytes
                     ) -> tuple[int, dict[str, list[tuple[str, int]]]]:
        """The total and facet counts of a principal's whole reach, kept for this
        generation (counted and kept if not yet)."""
        known = self._reach_counts.get(key, generation)
        if known is None:
            counted, counts, _, _ = self._aggregate(searcher, compiled, key[1], None)
            known = (counted, counts, [])
            self._reach_counts.put(key, generation, known)
        return known[0], known[1]

    def _top_page(self, searcher: tantivy.Searcher, node: q.Node, compiled: tantivy.Query,
                  known: tuple[int, dict[str, list[tuple[str, int]]]] | None,
                  page: tuple[int, int, str]
                  ) -> tuple[int, list[int], dict[str, list[tuple[str, int]]]]:
        """``search_counted`` with the hits from Tantivy's top-N collector, given the total
        and facet counts if they are ``known`` already (else counted with the hits): from
        the newest days when they hold the page (``_newest_page``), else over every match,
        in parts where that pays (``_top``)."""
        limit, offset, order = page
        total, counts = known if known is not None else (None, {})
        if limit <= 0 or (total is not None and offset >= total):
            if total is None:
                total = _count(searcher.search(compiled, limit=1, count=True))
            return total, [], counts
        if total is not None:
            newest = self._newest_page(searcher, node, compiled, total, page)
            if newest is not None:
                return total, newest, counts
        counted, ids = self._top(searcher, compiled, limit, offset, order, total is None,
                                 self._worth_splitting(searcher, node))
        return (counted if total is None else total), ids, counts

    def _newest_page(self, searcher: tantivy.Searcher, node: q.Node, compiled: tantivy.Query,
                     total: int, page: tuple[int, int, str]) -> list[int] | None:
        """The ids of a page newest first of a query whose ``total`` is known (the search
        page's facets counted it, or a principal's reach counts are kept), searched among
        the documents of the newest days only; None where that cannot be done or did not
        hold the page, and the caller searches every match.

        Why: with the total known, the top-N collector's walk over every match is only for
        the page, and a query matching most of the archive has its first 50 among the
        newest few hundred documents. The days (indexed ``day`` terms, schema 6) are
        chosen from the order keys of the NEWEST_KEPT newest documents (``_newest``) so
        that they hold about NEWEST_SPARE times the page's share of ``total``, assuming
        the matches spread like the documents. Every document of those days sorts before
        every other (a dated document's key starts with its date; an undated one's is its
        id alone, below any date from the second day of 1970), so the days' first hits
        are the query's first hits once they number offset + limit; otherwise (the
        matches lie elsewhere in time, or messages were deleted) the caller
        searches them all, and the kept keys are read again next time. Measured at 1M:
        ``from:phillip.allen``'s page 8.8 ms -> 0.2 ms, ``body:"please call"`` 18.8 ->
        0.8 ms (docs/benchmarks.md)."""
        limit, offset, order = page
        wanted = offset + limit
        if (order != "newest" or not self.layout.days or wanted > _ONE_PASS_HITS
                or searcher.num_docs < SPLIT_DOCS):
            return None
        span = wanted * searcher.num_docs // total * NEWEST_SPARE
        newest = self._newest
        if newest is None:
            result = searcher.search(tantivy.Query.all_query(), limit=NEWEST_KEPT,
                                     count=False, order_by_field=ORDER_KEY,
                                     order=tantivy.Order.Desc)
            newest = self._newest = [int(key) for key, _ in result.hits]
        if span >= len(newest):
            return None
        first_day = (newest[span] >> ORDER_ID_BITS) // DAY_S
        if first_day < 1 or _ends_before(node, first_day * DAY_S):
            # A range of dates that ends before those days matches none of them, and
            # Tantivy would read its days' documents once for nothing.
            return None
        days = tantivy.Query.range_query(self.schema, DAY_FIELD, tantivy.FieldType.Integer,
                                         first_day, None, use_inverted_index=True)
        result = self._search(searcher, tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, compiled), (tantivy.Occur.Must, days)]),
            limit, offset, True, (ORDER_KEY, tantivy.Order.Desc))
        found = _count(result)
        if found < wanted:
            self._newest = None
            return None
        if found > wanted * NEWEST_SPARE * 16:
            # The days have filled with new mail since the keys were read: read them again
            # next time, before the walk over those days costs what this saves.
            self._newest = None
        values = searcher.fast_field_values("id", [address for _, address in result.hits])
        return [int(v) for v in values if v is not None]

    def facet_counts(self, node: q.Node, size: int = 20) -> dict[str, list[tuple[str, int]]]:
        """For each facet field, its most frequent values among the matches, with counts
        (a message with two values counts in both); ``has`` counts messages with
        attachments."""
        return self._aggregate(self._searcher(), self.compile(node), size, None)[1]

    def _aggregate(self, searcher: tantivy.Searcher, compiled: tantivy.Query, facets: int,
                   hits: tuple[int, str, bool] | None
                   ) -> tuple[int, dict[str, list[tuple[str, int]]],
                              list[tuple[int, int | None, int]], list[int]]:
        """(total matches, facet counts with ``facets`` values each (none if 0), the
        spread of the matches over the order's column, the ids of the first matches in
        that order), from one aggregation: one pass over the matches. ``hits`` is (how
        many, order, one pass): in one pass the ids of that many first matches, sorted
        here, and no spread; otherwise the spread, as (low, high, count) ranges, lowest
        first, high excluded, empty ones left out, and no ids."""
        # The tier is counted even without facets: every document has exactly one
        # (``_document``), so its buckets and the rest the aggregation did not list add up
        # to the number of matches, for the cost of one single-valued column.
        counted = FACET_FIELDS if facets > 0 else ("tier",)
        aggregations: dict[str, Any] = {name: {"terms": {"field": name,
                                                         "size": max(facets, 1)}}
                                        for name in counted}
        if hits is not None and hits[2]:
            field, direction = SORT_ORDERS[hits[1]]
            way = "desc" if direction == tantivy.Order.Desc else "asc"
            # The message id breaks ties (many messages share a date; undated ones all
            # sort as 0), so that pages follow on from each other.
            aggregations[_HITS] = {"top_hits": {"size": hits[0], "docvalue_fields": ["id"],
                                                "sort": [{field: way}, {"id": way}]}}
        elif hits is not None:
            field = SORT_ORDERS[hits[1]][0]
            aggregations[_SPREAD] = (
                {"range": {"field": field, "ranges": [
                    {"from": low, "to": high} for low, high in zip(
                        _SIZE_EDGES, (*_SIZE_EDGES[1:], None), strict=True)]}}
                if field == "size" else
                {"histogram": {"field": field, "interval": _WEEK_S, "min_doc_count": 1}})
        try:
            result: dict[str, Any] = searcher.aggregate(compiled, aggregations)
        except ValueError as exc:
            raise QueryError(f"the search failed: {exc}.") from exc
        counts = {name: [(str(b["key"]), int(b["doc_count"]))
                         for b in result.get(name, {}).get("buckets", [])]
                  for name in counted}
        total = sum(n for _, n in counts["tier"]) + int(
            result.get("tier", {}).get("sum_other_doc_count", 0))
        ids = [int(h["docvalue_fields"]["id"][0])
               for h in result.get(_HITS, {}).get("hits", [])]
        return total, counts if facets > 0 else {}, _spread(result.get(_SPREAD)), ids

    def _worth_splitting(self, searcher: tantivy.Searcher, node: q.Node) -> bool:
        """Whether a query may match enough messages for its search in parts to pay: not
        when its terms say it matches fewer than SPLIT_MATCHES (``_most``), where a
        second search and the threads cost more than they save."""
        most = self._most(searcher, node)
        return most is None or most >= SPLIT_MATCHES

    def _most(self, searcher: tantivy.Searcher, node: q.Node) -> int | None:
        """At most how many documents match, from the document frequencies of its terms
        (no evaluation), or None when that cannot be told (a range, a negation, a
        prefix, everything): whether a query is broad enough for its page to be sorted
        within a window (``search_counted``). Measured at 1,000,000 messages, the window
        pays only for a query known to match very many; a query whose breadth is not
        known keeps the one pass (on a narrow date range the second evaluation doubled
        its time), and so does a user's own-mail scope (0 here): their address is a
        term walked beside the query, and walking it twice cost more than sorting saved."""
        if isinstance(node, q.Term) and not node.prefix:
            if node.field in KEYWORD_FIELDS:
                return int(searcher.doc_freq(node.field, keyword_value(node)))
            tokens = [str(t) for t in self.analyzer.analyze(spaced(node.text))]
            if tokens:
                return sum(self._most_in(searcher, name, tokens)
                           for name in ((node.field,) if node.field else DEFAULT_FIELDS))
        if isinstance(node, q.Party):
            return 0
        if isinstance(node, q.IdSet):
            return len(node.ids)
        if isinstance(node, q.HasAttachment):
            return int(searcher.doc_freq("has", "attachment"))
        if isinstance(node, q.And):
            known = [m for m in (self._most(searcher, c) for c in node.children)
                     if m is not None]
            return min(known) if known else None
        if isinstance(node, q.Or):
            each = [self._most(searcher, c) for c in node.children]
            return None if None in each else sum(m for m in each if m is not None)
        return None

    def _most_in(self, searcher: tantivy.Searcher, name: str, tokens: list[str]) -> int:
        """At most how many documents have these words in field ``name``: exactly the
        matches of their word run where there is one, else the rarest word's."""
        run = self._run(name, tokens) if len(tokens) > 1 else None
        if run is not None:
            return int(searcher.doc_freq(*run))
        return min(int(searcher.doc_freq(name, t)) for t in tokens)

    def _page(self, searcher: tantivy.Searcher, node: q.Node,
              spread: list[tuple[int, int | None, int]], page: tuple[int, int, str]
              ) -> list[int]:
        """The ids of a page of hits (limit, offset, order), sorted by the order's column
        and then by message id (the same order on every page: many messages share a date,
        and undated ones all sort as 0). Sorting is what costs (the aggregation's top hits
        cost about 100 ns per document sorted), so only the matches of the first ranges
        of ``spread`` that hold the page are sorted: with the order's column in that
        window, they are the first matches in the order, and a page on a query matching
        600,000 messages sorts a few thousand of them instead of all."""
        limit, offset, order = page
        field, direction = SORT_ORDERS[order]
        first = reversed(spread) if direction == tantivy.Order.Desc else iter(spread)
        held = 0
        window: list[tuple[int, int | None, int]] = []
        for bucket in first:
            window.append(bucket)
            held += bucket[2]
            if held >= offset + limit:
                break
        compiled = self.compile(node)
        if held < sum(count for _, _, count in spread):
            highs = [high for _, high, _ in window]
            compiled = self._within(node, field, min(low for low, _, _ in window),
                                    max(h for h in highs if h is not None) - 1
                                    if None not in highs else None)
        way = "desc" if direction == tantivy.Order.Desc else "asc"
        # "from" is below the number of matches in the window (the caller checked that
        # the offset is below the total): Tantivy panics on a "from" past the last one.
        aggregations = {_HITS: {"top_hits": {
            "size": limit, "from": offset, "docvalue_fields": ["id"],
            "sort": [{field: way}, {"id": way}]}}}
        try:
            result: dict[str, Any] = searcher.aggregate(compiled, aggregations)
        except ValueError as exc:
            raise QueryError(f"the search failed: {exc}.") from exc
        return [int(h["docvalue_fields"]["id"][0]) for h in result[_HITS].get("hits", [])]

    def _within(self, node: q.Node, field: str, low: int, high: int | None
                ) -> tantivy.Query:
        """The query, limited to documents whose ``field`` is from ``low`` to ``high``:
        the range is one more clause beside the query's own (not a query around it), and
        bounded on both sides, so that Tantivy walks the few documents of the range first
        and checks the query on them (unbounded, it walked every match of a broad
        query's own date range)."""
        kind = tantivy.FieldType.Unsigned if field == "size" else tantivy.FieldType.Integer
        if field == "sort_date" and low > 0:
            # The same documents (only undated ones sort as 0), through the indexed date:
            # there Tantivy walks the window first (half the time of a broad query's
            # window on sort_date, measured).
            field = "date"
        window = tantivy.Query.range_query(self.schema, field, kind, low, high)
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, window),
                                            *self._clauses(node)])

    def _date_range(self, node: q.DateRange, by_column: bool = False) -> tantivy.Query:
        """A range of dates: over the indexed day numbers when the layout has them and the
        bounds are whole UTC days (as the query language gives them), unless ``by_column``;
        else over the date column; the same documents either way."""
        start = int(node.start.timestamp()) if node.start else None
        end = int(node.end.timestamp()) if node.end else None
        if (self.layout.days and not by_column
                and all(b is None or b % DAY_S == 0 for b in (start, end))):
            return tantivy.Query.range_query(
                self.schema, DAY_FIELD, tantivy.FieldType.Integer,
                start // DAY_S if start is not None else None,
                end // DAY_S - 1 if end is not None else None)
        return tantivy.Query.range_query(self.schema, "date", tantivy.FieldType.Integer,
                                         start, end - 1 if end is not None else None)

    def _generation(self) -> bytes:
        """What identifies the committed state of the index: Tantivy's meta.json, which
        every commit (new segments, deletes, merges) replaces. Read before the searcher is
        reloaded, so that counts are never kept under a generation older than theirs."""
        try:
            return (self.path / "meta.json").read_bytes()
        except OSError:
            return b""

    def referring(self, message_ids: Sequence[str], limit: int = 500) -> list[int]:
        """Ids of messages that reply to or reference any of these Message-IDs."""
        wanted = sorted({m.strip().strip("<>") for m in message_ids if m.strip("<> ")})
        if not wanted:
            return []
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "refs", m))
             for m in wanted])
        searcher = self._searcher()
        hits = searcher.search(query, limit=limit, count=False).hits
        return [int(v) for v in searcher.fast_field_values("id", [a for _, a in hits])
                if v is not None]

    def count(self, node: q.Node) -> int:
        """How many messages match: over a large index, a broad query's parts counted at
        once (``_parts``), which add up since every match is in exactly one part."""
        searcher = self._searcher()
        compiled = self.compile(node)
        with self._searching():
            parts = (self._parts(searcher, compiled, 1)
                     if self._worth_splitting(searcher, node) else [compiled])
            return sum(_count(result) for result in self._each_part(
                lambda part: searcher.search(part, limit=1, count=True), parts))

    def ids(self, node: q.Node, page: int = 10_000) -> Iterator[int]:
        """Every matching message id, newest first, read a page at a time."""
        offset = 0
        while True:
            # The top-N collector: reading every match, the order among messages of the
            # same date does not matter, and it is cheaper per match than the aggregation.
            ids = self._top(self._searcher(), self.compile(node), page, offset, "newest",
                            False)[1]
            yield from ids
            if len(ids) < page:
                return
            offset += page

    def _top(self, searcher: tantivy.Searcher, compiled: tantivy.Query, limit: int,
             offset: int, order: str, count: bool, split: bool = False
             ) -> tuple[int, list[int]]:
        """(the count if asked for, else 0; ids of a page of matches) by Tantivy's top-N
        collector: over the order key, ties broken by id; over another column, ties (same
        date, same size) follow the index's order of documents. With ``split``, a page by
        the order key over a large index is searched in parts (``_parts``), one a
        thread."""
        field, direction = SORT_ORDERS[order]
        with self._searching():
            if self._keyed(order):
                field = ORDER_KEY
                parts = self._parts(searcher, compiled, offset + limit) if split else []
                if len(parts) > 1:
                    return self._top_of_parts(searcher, parts, (limit, offset, direction),
                                              count)
            result = self._search(searcher, compiled, limit, offset, count, (field, direction))
        # The id fast field, not the stored documents: one column read per page.
        values = searcher.fast_field_values("id", [address for _, address in result.hits])
        return _count(result), [int(v) for v in values if v is not None]

    @staticmethod
    def _search(searcher: tantivy.Searcher, compiled: tantivy.Query, limit: int, offset: int,
                count: bool, by: tuple[str, tantivy.Order]) -> tantivy.SearchResult:
        try:
            return searcher.search(compiled, limit=limit, offset=offset, count=count,
                                   order_by_field=by[0], order=by[1])
        except ValueError as exc:
            raise QueryError(f"the search failed: {exc}.") from exc

    def _parts(self, searcher: tantivy.Searcher, compiled: tantivy.Query, hits: int
               ) -> list[tantivy.Query]:
        """The query split by ranges of message ids into ``threads`` parts that together
        match exactly what it matches, or the query alone: when the index is small, the
        page deep (each part must give all its hits), one thread is all there is, or
        another page or count is being searched at the same time (``_searching``).
        Documents are added in the order of their ids, so each part's matches lie mostly
        in one stretch of each segment, which Tantivy reaches by skipping: each part walks
        about its share of the matches, and the parts run at once (the binding lets go of
        the interpreter while it searches)."""
        if (self.threads < 2 or hits > _ONE_PASS_HITS or searcher.num_docs < SPLIT_DOCS
                or self._searches > 1):
            return [compiled]
        marker = self.marker()
        if marker is None:
            return [compiled]
        step = marker.watermark // self.threads + 1
        edges = [None, *(step * n for n in range(1, self.threads)), None]
        return [tantivy.Query.boolean_query([
            (tantivy.Occur.Must, compiled),
            (tantivy.Occur.Must, tantivy.Query.range_query(
                self.schema, "id", tantivy.FieldType.Integer, low,
                high - 1 if high is not None else None))])
            for low, high in itertools.pairwise(edges)]

    @contextlib.contextmanager
    def _searching(self) -> Iterator[None]:
        """Counts a page or count being searched while it runs. A search splits into parts
        (``_parts``) only when it is the only one: beside others, the cores are busy
        already, and the parts' extra work and their wait for the pool's threads cost more
        than they save (measured at 1M with four searchers at once: 228-235 searches a
        second when every search split, 243-260 when only a lone one does)."""
        with self._pool_lock:
            self._searches += 1
        try:
            yield
        finally:
            with self._pool_lock:
                self._searches -= 1

    def _top_of_parts(self, searcher: tantivy.Searcher, parts: list[tantivy.Query],
                      page: tuple[int, int, tantivy.Order], count: bool) -> tuple[int, list[int]]:
        """``_top`` over the parts at once: each gives its first offset + limit hits by the
        order key (unique: the date above the id), and the page is cut from all of them in
        that order; the counts add up, since every match is in exactly one part."""
        limit, offset, direction = page
        results = self._each_part(
            lambda part: self._search(searcher, part, offset + limit, 0, count,
                                      (ORDER_KEY, direction)), parts)
        hits = sorted((hit for result in results for hit in result.hits),
                      key=lambda hit: int(hit[0]), reverse=direction == tantivy.Order.Desc)
        chosen = [address for _, address in hits[offset:offset + limit]]
        values = searcher.fast_field_values("id", chosen)
        return sum(_count(result) for result in results), [int(v) for v in values
                                                            if v is not None]

    def _each_part(self, search: Callable[[tantivy.Query], tantivy.SearchResult],
                   parts: list[tantivy.Query]) -> list[tantivy.SearchResult]:
        """``search`` of every part, at once on the index's threads when there are several
        (the pool is made on first use); of a lone query, in this thread."""
        if len(parts) == 1:
            return [search(parts[0])]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="search")
            pool = self._pool
        return list(pool.map(search, parts))

    def doc_count(self) -> int:
        return int(self._searcher().num_docs)

    def ids_through(self, watermark: int, tier: str | None = None) -> list[int]:
        """The id of every document with an id up to ``watermark`` (of one tier, if given),
        once per document: an id twice means a doubled document."""
        searcher = self._searcher()
        query = tantivy.Query.range_query(self.schema, "id", tantivy.FieldType.Integer,
                                          0, watermark)
        if tier is not None:
            query = tantivy.Query.boolean_query([
                (tantivy.Occur.Must, query),
                (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "tier", tier))])
        total = _count(searcher.search(query, limit=1, count=True))
        if total == 0:
            return []
        hits = searcher.search(query, limit=total, count=False).hits
        # The id fast field, not the stored documents: a few milliseconds per 100,000.
        values = searcher.fast_field_values("id", [address for _, address in hits])
        return [int(v) for v in values if v is not None]

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
            return self._date_range(node)
        if isinstance(node, q.SizeRange):
            return tantivy.Query.range_query(
                self.schema, "size", tantivy.FieldType.Unsigned,
                node.above + 1 if node.above is not None else None,
                max(node.below - 1, 0) if node.below is not None else None,
            )
        if isinstance(node, q.Party):
            if not node.addresses:
                return tantivy.Query.term_set_query(self.schema, "id", [])
            if len(node.addresses) == 1:
                # A term query walks its postings beside the others; a term set first
                # builds a bitset of all of them (~2.5 ms for 650,000 messages).
                (address,) = node.addresses
                return tantivy.Query.term_query(self.schema, "party", address)
            return tantivy.Query.term_set_query(self.schema, "party", sorted(node.addresses))
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
            clauses = self._clauses(node)
            if all(occur == tantivy.Occur.MustNot for occur, _ in clauses):
                clauses.append((tantivy.Occur.Must, tantivy.Query.all_query()))
            return tantivy.Query.boolean_query(clauses)
        if isinstance(node, q.Or):
            return tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, self.compile(c)) for c in node.children])
        raise QueryError(f"unsupported query node {node!r}.")

    def _clauses(self, node: q.Node) -> list[tuple[tantivy.Occur, tantivy.Query]]:
        """The clauses of a conjunction (a node of any other kind is one clause). A date
        range beside a clause known to be narrow reads the date column (``_date_range``)."""
        children = node.children if isinstance(node, q.And) else (node,)
        by_column = self._beside_narrow(children)
        return [(tantivy.Occur.MustNot, self.compile(child.child)) if isinstance(child, q.Not)
                else (tantivy.Occur.Must, self._date_range(child, by_column))
                if isinstance(child, q.DateRange)
                else (tantivy.Occur.Must, self.compile(child)) for child in children]

    def _beside_narrow(self, children: Sequence[q.Node]) -> bool:
        """Whether a date range among these clauses of a conjunction should read the date
        column rather than the day numbers: when another clause is known (``_most``) to
        match under DAY_TERMS_SHARE of the documents. The day numbers' union costs about
        the documents of the range, whoever else is asked; the column, read only for the
        candidates of the other clauses, is cheaper when they are few (measured at 1M:
        ``subject:gas after:2001-01-01`` 4.5 ms by the column, 10 ms by the days)."""
        if not self.layout.days or not any(isinstance(c, q.DateRange) for c in children):
            return False
        searcher = self._index.searcher()
        narrow = searcher.num_docs * DAY_TERMS_SHARE
        return any(most is not None and most < narrow
                   for most in (self._most(searcher, c) for c in children
                                if not isinstance(c, (q.DateRange, q.Not))))

    def _term(self, term: q.Term) -> tantivy.Query:
        if term.field is not None and term.field not in _expected_fields(self.layout):
            # hold: (and any operator the index has no field for) names messages that are
            # looked up before a search reaches the index; one reaching it is a caller's slip.
            raise QueryError(f"the index cannot answer '{term.field}:' by itself: the messages "
                             "it names must be looked up first.")
        if term.field in KEYWORD_FIELDS:
            value = keyword_value(term)
            if term.prefix:
                return self._prefix_query(term.field, value)
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
                return self._prefix_query(name, word)
            return tantivy.Query.term_query(self.schema, name, word, index_option="freq")
        if prefix:
            return tantivy.Query.phrase_prefix_query(self.schema, name, tokens)
        run = self._run(name, tokens)
        if run is not None:
            return tantivy.Query.term_query(self.schema, *run)
        return tantivy.Query.phrase_query(self.schema, name, tokens)

    def _prefix_query(self, name: str, word: str) -> tantivy.Query:
        """The words of field ``name`` that begin with ``word``. Tantivy builds an automaton
        for each (0.5-0.7 ms a field; ``west*`` over the seven default fields cost 5 ms
        before any search), which depends on nothing but the field and the word: it is kept
        for the next time that query is asked (its next page, its count, a review policy's
        next run), at most PREFIX_QUERIES_KEPT of them, all dropped when full."""
        key = (name, word)
        query = self._prefixes.get(key)
        if query is None:
            if len(self._prefixes) >= PREFIX_QUERIES_KEPT:
                self._prefixes.clear()
            query = tantivy.Query.regex_query(self.schema, name, re.escape(word) + ".*")
            self._prefixes[key] = query
        return query

    def _run(self, name: str, tokens: Sequence[str | tuple[int, str]]
             ) -> tuple[str, str] | None:
        """(field, term) of the word run that matches exactly what the phrase of these
        words over field ``name`` matches, or None when the index holds no such run (a
        field without runs, a phrase longer than RUN_WORDS, an index of the older schema)."""
        if not self.word_runs or name not in RUN_FIELDS or not 1 < len(tokens) <= RUN_WORDS:
            return None
        return RUN_FIELDS[name], " ".join(str(t) for t in tokens)
