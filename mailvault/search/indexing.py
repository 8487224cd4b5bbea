"""Index documents from archived messages: the pipeline's fast path, healing and rebuilding.

The pipeline builds documents from what its workers parsed; everything else (messages the
index missed after a crash or a full disk, messages whose arrivals or tier changed, an index
folder put back from an older copy, a full rebuild) reads the bytes back from the store,
parses them again and builds the same document.

What the index holds is known from two records that must agree: the catalog's (watermark and
reindex generation, in ``index_state``) and the index folder's own marker (``IndexMarker``,
written after each index commit, so it travels with the folder). The index is trusted up to
the lower watermark. A marker whose generation is behind the catalog's means the folder
missed reindex rounds that cannot be named any more, so every document is written again; an
index with no marker at all (an empty folder, or one written before markers) is checked
document by document.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from mailvault import lifeline
from mailvault.config import Settings
from mailvault.message import parse
from mailvault.search.backend import IndexMarker, SearchBackend
from mailvault.search.document import (
    FULL_TEXT_TIERS,
    IndexDoc,
    message_document,
    with_arrivals,
)
from mailvault.search.extract import Limits, extractor
from mailvault.store import audit, catalog


class Vault(Protocol):
    """What healing needs of a vault (``mailvault.vault.Vault`` is one): the catalog, the
    index, the settings, and the one way message bytes are read back. A protocol, so that
    this module never imports the vault that wires it."""

    engine: Engine
    index: SearchBackend
    settings: Settings
    index_problem: str

    def read_raw(self, row: catalog.MessageRow) -> bytes: ...

_BATCH = 500
_EVERY_ID = 2**62
# A heal with at least this many messages above its watermark (a reindex, an index folder
# lost or of an older schema) parses them in worker processes: parsing is most of the work
# (about 1,000 messages a second on one core), and a pool costs a second to start.
PARALLEL_FROM = 20_000
# Messages a worker parses per round trip (a batch gives each of two workers several).
_CHUNK = 64


@dataclass(frozen=True)
class IndexedThrough:
    """How far the index can be trusted, from the catalog's record and the index's own.

    ``watermark``: every message up to it has a current document (reindex queue aside).
    ``generation``: the reindex rounds the documents reflect. ``suspect``: the two records
    disagree (or the index has none), so documents below the watermark are compared with the
    catalog one by one after healing.
    """

    watermark: int
    generation: int
    suspect: bool


@dataclass(frozen=True)
class IndexProgress:
    """What `status` shows about the index."""

    messages: int
    indexed: int
    queued: int
    indexed_through: int
    newest: int
    problem: str
    # What rebuilding the index would bring ('' when nothing: it has the current schema).
    upgrade: str = ""

    @property
    def behind(self) -> int:
        return self.messages - self.indexed

    def to_json(self) -> dict[str, object]:
        return {"messages": self.messages, "indexed": self.indexed, "behind": self.behind,
                "indexed_through": self.indexed_through, "newest": self.newest,
                "reindex_queued": self.queued, "problem": self.problem or None,
                "upgrade": self.upgrade or None}


def indexed_through(vault: Vault, conn: Connection) -> IndexedThrough:
    """How far the index holds current documents (reads only; works on a full disk)."""
    watermark = catalog.get_watermark(conn)
    generation = catalog.get_generation(conn)
    marker = vault.index.marker()
    if marker is None:
        if vault.index.doc_count() == 0:
            # A new or deleted index folder: every document is written from today's catalog.
            return IndexedThrough(0, generation, suspect=watermark > 0)
        return IndexedThrough(watermark, generation, suspect=True)
    if marker.generation < generation:
        return IndexedThrough(0, generation, suspect=True)
    return IndexedThrough(min(watermark, marker.watermark), marker.generation,
                          suspect=marker.watermark < watermark)


def heal(vault: Vault, progress: Callable[[int], None] | None = None) -> int:
    """Index every message above the trusted watermark and every queued one (a queued one
    that no longer exists loses its document); when the index's records disagreed, compare
    its documents with the catalog and mend the difference. Returns how many documents.

    Only the holder of the index writer heals: when another process holds it (a running
    `serve`'s archiver), that process heals, and this returns 0 at once instead of waiting.
    Raises StoreError when the index or the catalog cannot be written (a full disk): what was
    committed before stays, and the next heal goes on from there.
    """
    if vault.index.writer_busy():
        return 0
    try:
        return _heal(vault, progress)
    except OperationalError as exc:
        raise catalog.translate(exc) from exc


def _heal(vault: Vault, progress: Callable[[int], None] | None) -> int:
    with vault.engine.connect() as conn:
        start = indexed_through(vault, conn)
        behind = catalog.count_ids_between(conn, start.watermark, _EVERY_ID)
    counter = _Counter(progress)
    with _parsers(vault, behind) as pool:
        watermark = _index_above(vault, start.watermark, start.generation, counter, pool)
        generation = _index_queue(vault, watermark, start.generation, counter)
    if start.suspect:
        with vault.engine.connect() as conn:
            wrong = _mismatched(vault, conn, watermark)
        if wrong:
            with vault.engine.begin() as conn:
                catalog.queue_reindex(conn, wrong)
            generation = _index_queue(vault, watermark, generation, counter)
    if vault.index.marker() != IndexMarker(watermark, generation):
        # Nothing needed indexing, but the folder had no marker (or an outdated one).
        vault.index.commit(watermark, generation)
    # After a reindex or an import (whose flush heals), what was written is searched with
    # fresh statistics (the pipeline's own documents count too: same backend object).
    vault.index.refresh_statistics()
    return counter.done


@contextlib.contextmanager
def _parsers(vault: Vault, behind: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes that parse for a heal of ``behind`` messages, if that many (None:
    parse here)."""
    workers = vault.settings.ingest.workers or multiprocessing.cpu_count()
    if behind < PARALLEL_FROM or workers < 2:
        yield None
        return
    # The workers end with this process, even when it is killed (lifeline.py).
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=lifeline.bind_to, initargs=(os.getpid(),))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def _index_above(vault: Vault, watermark: int, generation: int, counter: _Counter,
                 pool: ProcessPoolExecutor | None = None) -> int:
    """Index every message above ``watermark``, a batch per commit; the new watermark.
    With worker processes, each batch is handed to them before the one before it is
    written, so that parsing and writing overlap."""
    rows = _batch_after(vault, watermark)
    building = _building(vault, rows, pool)
    while rows:
        following = _batch_after(vault, rows[-1].id)
        ahead = _building(vault, following, pool) if following else None
        docs, built = building()
        _put(vault, rows, docs)
        watermark = rows[-1].id
        vault.index.commit(watermark, generation)
        with vault.engine.begin() as conn:
            # A message another process changed since it was read (disposed of, say, its
            # own heal finding nothing to delete yet) is queued: the queue pass below mends
            # its document.
            catalog.queue_reindex(conn, _changed(conn, built))
            catalog.set_watermark(conn, watermark)
        counter.add(len(rows))
        if ahead is None:
            break
        rows, building = following, ahead
    return watermark


def _batch_after(vault: Vault, watermark: int) -> list[catalog.MessageRow]:
    with vault.engine.connect() as conn:
        return list(islice(catalog.iter_messages(conn, after_id=watermark), _BATCH))


def _index_queue(vault: Vault, watermark: int, generation: int, counter: _Counter) -> int:
    """Rebuild the document of every queued message, a round per commit; the generation."""
    while True:
        with vault.engine.connect() as conn:
            ids = catalog.reindex_pending(conn, _BATCH)
            rows = catalog.messages_by_id(conn, ids)
        if not ids:
            return generation
        # A queued id without a message was disposed of: its document goes.
        present = {r.id for r in rows}
        vault.index.delete([i for i in ids if i not in present])
        docs, built = _building(vault, rows, None)()
        _put(vault, rows, docs)
        # The index records the round before the catalog does: a crash in between leaves the
        # index ahead (the round is done again), never a copy that looks newer than it is.
        generation += 1
        vault.index.commit(watermark, generation)
        with vault.engine.begin() as conn:
            # Only what is still as it was read leaves the queue. A message changed since
            # (disposed of, moved) was queued again by its changer, which is the same queue
            # row, and its changer's own heal may have found the writer taken or run before
            # this round's documents were added: clearing it would leave a document of a
            # message that is gone, with nothing queued to remove it. It stays for the next
            # round.
            changed = set(_changed(conn, built))
            catalog.clear_reindex(conn, [i for i in ids if i not in changed])
            catalog.set_generation(conn, generation)
        counter.add(len(rows))


def _mismatched(vault: Vault, conn: Connection, watermark: int) -> list[int]:
    """Ids up to ``watermark`` whose document is missing, doubled, in the wrong tier, or of a
    message the catalog no longer has."""
    tiers = catalog.tiers_through(conn, watermark)
    indexed = vault.index.ids_through(watermark)
    seen: set[int] = set()
    wrong: set[int] = set()
    for message_id in indexed:
        if message_id in seen or message_id not in tiers:
            wrong.add(message_id)
        seen.add(message_id)
    wrong |= tiers.keys() - seen
    for tier in set(tiers.values()):
        # In the tier without belonging there, or belonging there and not in it.
        wrong |= set(vault.index.ids_through(watermark, tier)) ^ {
            i for i, t in tiers.items() if t == tier}
    return sorted(wrong)


def index_progress(vault: Vault) -> IndexProgress:
    """How much of the catalog is searchable, and why not all of it (reads only)."""
    with vault.engine.connect() as conn:
        through = indexed_through(vault, conn)
        messages = catalog.count_ids_between(conn, 0, _EVERY_ID)
        indexed = catalog.count_ids_between(conn, 0, through.watermark)
        if through.suspect and indexed:
            # Documents the records vouch for but that are wrong (a message the catalog no
            # longer has is not one of the catalog's messages, so it does not count).
            present = catalog.tiers_through(conn, through.watermark)
            indexed -= len([i for i in _mismatched(vault, conn, through.watermark)
                            if i in present])
        queued = catalog.count_reindex_pending(conn)
        newest = catalog.max_message_id(conn)
    problem = vault.index_problem
    if not problem and (indexed < messages or queued) and vault.index.writer_busy():
        problem = ("another process (a running serve) holds the index writer and indexes "
                   "them")
    return IndexProgress(messages, max(indexed, 0), queued, through.watermark, newest, problem,
                         vault.index.upgrade)


def rebuild(vault: Vault, actor: str, progress: Callable[[int], None] | None = None) -> int:
    """Throw the index away and build it again from store and catalog (audited: a rebuilt
    index agrees with whatever the catalog holds, so the log says when one was made)."""
    vault.index.clear()
    try:
        with vault.engine.begin() as conn:
            catalog.set_watermark(conn, 0)
            audit.record(conn, actor, "reindex",
                         {"messages": catalog.count_ids_between(conn, 0, 2**62)})
    except OperationalError as exc:
        raise catalog.translate(exc) from exc
    return heal(vault, progress)


def _changed(conn: Connection, built: dict[int, catalog.DocumentState]) -> list[int]:
    """The messages whose documents were built from a state the catalog no longer has."""
    now = catalog.document_states(conn, list(built))
    return [i for i, state in built.items() if now.get(i) != state]


def _put(vault: Vault, rows: list[catalog.MessageRow], docs: list[IndexDoc]) -> None:
    """Write the documents of these messages (not committed). A message the index will not
    take stays recorded as a failure (once) and healing goes on past it; one it takes now
    settles its earlier failure."""
    rejected = vault.index.put(docs)
    with vault.engine.begin() as conn:
        catalog.resolve_failures(conn, (catalog.index_failure_provenance(r.id, r.sha256)
                                        for r in rows if r.id not in rejected))
        catalog.record_index_failures(conn, {r.id: (r.sha256, rejected[r.id])
                                             for r in rows if r.id in rejected})


Built = tuple[list[IndexDoc], dict[int, catalog.DocumentState]]


def _building(vault: Vault, rows: list[catalog.MessageRow],
              pool: ProcessPoolExecutor | None) -> Callable[[], Built]:
    """The documents of these messages and the state of each they were built from, as a
    call that returns them: parsed by the worker processes from now on (the bytes are read
    now, here: only this process holds the keys), or without workers all here when called.
    A worker that dies leaves its batch to be parsed here."""
    settings = vault.settings.search
    limits = Limits(max_bytes=settings.extract_max_mb * 1024 * 1024,
                    timeout_s=settings.extract_timeout_s, max_chars=settings.extract_max_chars)

    def finish(docs: list[IndexDoc]) -> Built:
        with vault.engine.connect() as conn:
            arrivals = catalog.arrivals_of(conn, [r.id for r in rows])
        return ([with_arrivals(doc, row.id, arrivals[row.id])
                 for doc, row in zip(docs, rows, strict=True)],
                {row.id: catalog.DocumentState(row.tier, row.location, len(arrivals[row.id]))
                 for row in rows})

    def read() -> list[tuple[bytes, int, str]]:
        return [(vault.read_raw(row), row.size, row.tier) for row in rows]

    if pool is None:
        return lambda: finish(message_documents(read(), limits, settings.max_text_chars))
    items = read()
    try:
        futures = [pool.submit(message_documents, items[start:start + _CHUNK], limits,
                               settings.max_text_chars)
                   for start in range(0, len(items), _CHUNK)]
    except BrokenProcessPool:
        futures = []

    def collect() -> Built:
        try:
            parsed = [doc for future in futures for doc in future.result()] if futures else None
        except BrokenProcessPool:
            parsed = None  # A worker died: this process parses the batch itself.
        if parsed is None:
            parsed = message_documents(items, limits, settings.max_text_chars)
        return finish(parsed)

    return collect


def message_documents(items: list[tuple[bytes, int, str]], limits: Limits,
                      max_text_chars: int) -> list[IndexDoc]:
    """What each message (raw bytes, size, tier) says of itself, without id and arrivals:
    the parsing part of healing (run in worker processes when healing many)."""
    extract = extractor(limits)
    docs = []
    for raw, size, tier in items:
        full_text = tier in FULL_TEXT_TIERS
        parsed = parse(raw, extract if full_text else None, max_text_chars)
        docs.append(message_document(parsed, size, tier, full_text))
    return docs


class _Counter:
    """Documents written so far, told to the progress callback."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.done = 0
        self._progress = progress

    def add(self, count: int) -> None:
        self.done += count
        if self._progress is not None:
            self._progress(self.done)
