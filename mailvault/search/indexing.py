"""Index documents from archived messages: the pipeline's fast path, healing and rebuilding.

The pipeline builds documents from what its workers parsed; everything else (messages the
index missed after a crash or a full disk, messages whose arrivals or tier changed, an index
folder put back from an older copy, a full rebuild) reads the bytes back from the store,
parses them again and builds the same document.

What the index holds is known from two records that must agree: the catalog's watermark
(``index_state``) and the index's own marker (``IndexMarker``, written after each index
commit, so it travels with the folder). The index is trusted up to the lower watermark.
Changes to archived messages (an arrival, a tier move, a disposal) are entries of the
catalog's reindex log; the marker's generation is the last entry the index applied, so each
index (one per node) applies the entries after it, and entries every index has applied are
pruned. A marker behind the pruned floor means the index missed changes that cannot be named
any more, so every document is written again; an index with no marker at all (an empty
folder, or one written before markers) is checked document by document.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
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
from mailvault.store import audit, catalog, claims


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
# How often an idle index records its cursor again (a heal that applies entries always does).
CURSOR_SEEN_EVERY_S = 3_600


@dataclass(frozen=True)
class IndexedThrough:
    """How far the index can be trusted, from the catalog's record and the index's own.

    ``watermark``: every message up to it has a current document (reindex log aside).
    ``generation``: the last reindex log entry the documents reflect. ``suspect``: the two
    records disagree (or the index has none), so documents below the watermark are compared
    with the catalog one by one after healing.
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
    # Every change logged so far is in a document written from today's catalog.
    newest = catalog.last_reindex_seq(conn)
    floor = catalog.reindex_floor(conn)
    marker = vault.index.marker()
    if marker is None:
        if vault.index.doc_count() == 0:
            # A new or deleted index folder: every document is written from today's catalog.
            return IndexedThrough(0, newest, suspect=watermark > 0)
        return IndexedThrough(watermark, floor, suspect=True)
    if marker.generation < floor:
        return IndexedThrough(0, newest, suspect=True)
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
    cursor = _cursor_name(vault)
    with vault.engine.connect() as conn:
        start = indexed_through(vault, conn)
        work = (catalog.count_ids_between(conn, start.watermark, _EVERY_ID)
                or catalog.count_reindex_after(conn, start.generation) or start.suspect)
        recorded = catalog.index_cursor(conn, cursor)
    done = 0
    if work or vault.index.marker() != IndexMarker(start.watermark, start.generation):
        done = _heal_holding_writer(vault, cursor, progress)
    elif recorded is None or recorded[0] != start.generation or (
            recorded[1] < time.time() - CURSOR_SEEN_EVERY_S):
        # An idle index says it is still there, or it would stop holding back the pruning
        # of entries it has yet to apply. Best effort: a full disk must not fail a reader.
        with contextlib.suppress(OperationalError):
            _record_cursor(vault, cursor, start.generation)
    # After a reindex or an import (whose flush heals), what was written is searched with
    # fresh statistics (the pipeline's own documents count too: same backend object).
    vault.index.refresh_statistics()
    return done


def _heal_holding_writer(vault: Vault, cursor: str,
                         progress: Callable[[int], None] | None) -> int:
    # The writer first, then where to start: another process healing the same index in
    # between could otherwise move its cursor (one name for both) past entries this heal
    # still needs, and prune them.
    vault.index.hold_writer()
    with vault.engine.connect() as conn:
        start = indexed_through(vault, conn)
        behind = catalog.count_ids_between(conn, start.watermark, _EVERY_ID)
    # Recorded before the work, so that no other node prunes what a rebuild will need.
    _record_cursor(vault, cursor, start.generation)
    counter = _Counter(progress)
    with _parsers(vault, behind) as pool:
        watermark = _index_above(vault, start.watermark, start.generation, counter, pool)
        generation = _index_log(vault, watermark, start.generation, counter)
    if start.suspect:
        with vault.engine.connect() as conn:
            wrong = _mismatched(vault, conn, watermark)
        if wrong:
            # This index's own difference: mended here, not logged for every index.
            counter.add(_rewrite(vault, wrong))
            vault.index.commit(watermark, generation)
    if vault.index.marker() != IndexMarker(watermark, generation):
        # Nothing needed indexing, but the folder had no marker (or an outdated one).
        vault.index.commit(watermark, generation)
    _record_cursor(vault, cursor, generation)
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
    written, so that parsing and writing overlap.

    A message another process changes after it was read here (disposed of, moved) has its
    change logged after ``generation``: the log pass mends its document."""
    rows = _batch_after(vault, watermark)
    building = _building(vault, rows, pool)
    while rows:
        following = _batch_after(vault, rows[-1].id)
        ahead = _building(vault, following, pool) if following else None
        _put(vault, rows, building())
        watermark = rows[-1].id
        vault.index.commit(watermark, generation)
        with vault.engine.begin() as conn:
            catalog.set_watermark(conn, watermark)
        counter.add(len(rows))
        if ahead is None:
            break
        rows, building = following, ahead
    return watermark


def _batch_after(vault: Vault, watermark: int) -> list[catalog.MessageRow]:
    with vault.engine.connect() as conn:
        return list(islice(catalog.iter_messages(conn, after_id=watermark), _BATCH))


def _index_log(vault: Vault, watermark: int, generation: int, counter: _Counter) -> int:
    """Rebuild the document of every message in the reindex log after ``generation``, a batch
    of entries per commit; the last entry applied.

    Entries commit in the order they are numbered (``catalog.queue_reindex``), so a change
    committed after a batch was read is numbered after it and is applied by a later batch
    (here or at the next heal), even if its message's document was just built from the
    state before it."""
    while True:
        with vault.engine.connect() as conn:
            entries = catalog.reindex_after(conn, generation, _BATCH)
        if not entries:
            return generation
        written = _rewrite(vault, list(dict.fromkeys(entry.message_id for entry in entries)))
        # The index records the entries it applied before the catalog hears of it: a crash
        # in between applies them again, harmlessly.
        generation = entries[-1].seq
        vault.index.commit(watermark, generation)
        counter.add(written)


def _rewrite(vault: Vault, ids: list[int]) -> int:
    """Write these messages' documents again (not committed); one the catalog no longer has
    was disposed of, and its document goes. Returns how many documents were written."""
    with vault.engine.connect() as conn:
        rows = catalog.messages_by_id(conn, ids)
    present = {r.id for r in rows}
    vault.index.delete([i for i in ids if i not in present])
    _put(vault, rows, _building(vault, rows, None)())
    return len(rows)


def _cursor_name(vault: Vault) -> str:
    """What names this index among the nodes' indexes: the node and where the index is."""
    return f"{claims.node_name(vault.settings.serve.node)}:{vault.index.location}"


def _record_cursor(vault: Vault, name: str, generation: int) -> None:
    """Record how far this index has applied the reindex log, and prune what every index
    seen lately has applied."""
    with vault.engine.begin() as conn:
        catalog.record_index_cursor(conn, name, generation)
        # A node's index not seen for this long stops holding back the pruning; when it
        # comes back, it finds its cursor below the floor and rebuilds.
        catalog.prune_reindex_log(
            conn, time.time() - vault.settings.search.node_absence_days * 86_400)


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
        queued = catalog.count_reindex_after(conn, through.generation)
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


def _building(vault: Vault, rows: list[catalog.MessageRow],
              pool: ProcessPoolExecutor | None) -> Callable[[], list[IndexDoc]]:
    """The documents of these messages, as a call that returns them: parsed by the worker
    processes from now on (the bytes are read now, here: only this process holds the keys),
    or without workers all here when called. A worker that dies leaves its batch to be
    parsed here."""
    settings = vault.settings.search
    limits = Limits(max_bytes=settings.extract_max_mb * 1024 * 1024,
                    timeout_s=settings.extract_timeout_s, max_chars=settings.extract_max_chars)

    def finish(docs: list[IndexDoc]) -> list[IndexDoc]:
        with vault.engine.connect() as conn:
            arrivals = catalog.arrivals_of(conn, [r.id for r in rows])
        return [with_arrivals(doc, row.id, arrivals[row.id])
                for doc, row in zip(docs, rows, strict=True)]

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

    def collect() -> list[IndexDoc]:
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
