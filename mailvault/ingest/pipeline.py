"""The one way in: raw bytes + Provenance from any source become archived messages.

For each batch:
  1. SHA-256 of the raw bytes; a message already archived only gains a provenance row.
  2. Worker processes parse (never raising), extract attachment text, cut large leaf parts
     out (single-instance storage) and compress, so both cores work.
  3. Blobs are sealed and appended to the tier's volume; one fsync for the batch.
  4. One catalog transaction: messages, addresses, attachments, parts, provenance, failures
     and an audit entry. Only now is anything reported archived.
  5. Index documents are added and committed; the watermark follows in the next transaction,
     so a crash in between heals on the next start (the index is derived). An index that
     cannot be written (a full disk) does not stop archiving: the watermark stays where the
     index's last commit left it, ``vault.index_problem`` says why, and healing catches up.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from mailvault import lifeline
from mailvault.errors import StoreError
from mailvault.fsnames import shown
from mailvault.ingest.prepare import Prepared, WorkerConfig, prepare_chunk
from mailvault.message import KnownMessage
from mailvault.records import Incoming, Provenance, Unreadable
from mailvault.search import indexing
from mailvault.search.document import with_arrivals
from mailvault.search.extract import Limits
from mailvault.store import audit, catalog, dictionaries
from mailvault.store.blobs import KIND_MESSAGE, KIND_PART
from mailvault.store.catalog import NewMessage
from mailvault.store.volumes import Location

if TYPE_CHECKING:
    from mailvault.vault import Vault

ARCHIVED = "archived"
DUPLICATE = "duplicate"
REFUSED = "refused"
MAX_REFUSALS_KEPT = 1000
LOOKAHEAD = 2
DICTIONARY_SAMPLE_BYTES = 16 * 1024
INDEX_COMMIT_DOCS = 20_000
# Live mail (capture, syncs) is searchable within a second. Each commit writes a segment,
# and Tantivy merges segments only eight at a time: a bulk import passes a longer interval
# (importing.IMPORT_INDEX_COMMIT_S), so that its mail ends in few segments, which do not
# each repeat the same words' dictionary.
INDEX_COMMIT_S = 1.0


@dataclass(frozen=True)
class Outcome:
    """What became of one item: archived, duplicate (already there) or refused."""

    provenance: Provenance
    status: str
    message_id: int | None = None
    sha256: str | None = None
    size: int = 0
    defects: int = 0
    reason: str = ""
    # Archived, but the index would not take its document (recorded as a failure).
    index_error: str = ""


@dataclass
class ArchiveReport:
    """Counts for a run of the pipeline (what the import summary prints)."""

    archived: int = 0
    duplicates: int = 0
    with_defects: int = 0
    refused: int = 0
    bytes: int = 0
    refusals: list[tuple[str, str]] = field(default_factory=list)
    not_indexed: list[tuple[str, str]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.bytes += outcome.size
        if outcome.index_error and len(self.not_indexed) < MAX_REFUSALS_KEPT:
            self.not_indexed.append((outcome.provenance.describe(), outcome.index_error))
        if outcome.status == ARCHIVED:
            self.archived += 1
            if outcome.defects:
                self.with_defects += 1
        elif outcome.status == DUPLICATE:
            self.duplicates += 1
        else:
            self.refused += 1
            if len(self.refusals) < MAX_REFUSALS_KEPT:
                self.refusals.append((outcome.provenance.describe(), shown(outcome.reason)))

    @property
    def processed(self) -> int:
        return self.archived + self.duplicates + self.refused

    def to_json(self) -> dict[str, object]:
        return {"archived": self.archived, "duplicates": self.duplicates,
                "with_defects": self.with_defects, "refused": self.refused,
                "bytes": self.bytes,
                "refusals": [{"item": i, "reason": r} for i, r in self.refusals],
                "not_indexed": [{"item": i, "reason": r} for i, r in self.not_indexed]}


class Pipeline:
    """Archives batches into one vault; holds the worker processes between batches."""

    def __init__(self, vault: Vault, *, tier: str = "active", actor: str = "system",
                 workers: int | None = None, index_commit_s: float = INDEX_COMMIT_S) -> None:
        self.vault = vault
        # How long archived mail may wait to be searchable (see INDEX_COMMIT_S).
        self.index_commit_s = index_commit_s
        self.tier = tier
        self.actor = actor
        settings = vault.settings
        self.batch_size = max(1, settings.ingest.batch_size)
        self.max_bytes = settings.ingest.max_message_mb * 1024 * 1024
        self.config = WorkerConfig(
            part_min_bytes=settings.store.part_min_bytes,
            compression_level=settings.store.compression_level,
            limits=Limits(max_bytes=settings.search.extract_max_mb * 1024 * 1024,
                          timeout_s=settings.search.extract_timeout_s,
                          max_chars=settings.search.extract_max_chars),
            tier=tier,
            max_text_chars=settings.search.max_text_chars,
        )
        count = settings.ingest.workers if workers is None else workers
        if count <= 0:
            count = multiprocessing.cpu_count()
        # The workers end with this process, even when it is killed (lifeline.py).
        self._pool = ProcessPoolExecutor(count, mp_context=lifeline.worker_context(),
                                         initializer=lifeline.bind_to, initargs=(os.getpid(),))
        self._workers = count
        self._pending_watermark: int | None = None
        self._uncommitted: list[int] = []
        # The index writer the uncommitted documents went to (SearchIndex.lost_writers at
        # the time): if it was lost since, so were they.
        self._writer_epoch = vault.index.lost_writers
        # Set when a write of ours failed; new documents then wait for a heal to succeed.
        self._index_failing = False
        self._last_commit = time.monotonic()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Finish index bookkeeping and stop the workers (never raising for the index: what
        is archived is committed, and healing finishes whatever the index lacks)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._commit_index(force=True)
        # A catalog on a full disk (StorageFullError) keeps the lower watermark: healing
        # redoes those documents.
        with contextlib.suppress(StoreError):
            self._flush_watermark()

    def _flush_watermark(self) -> None:
        if self._pending_watermark is not None:
            with self.vault.engine.begin() as conn:
                catalog.set_watermark(conn, self._pending_watermark)
            self._pending_watermark = None

    def archive_many(
        self,
        items: Iterable[Incoming | Unreadable],
        on_batch: Callable[[list[Outcome]], None] | None = None,
        flush: bool = True,
    ) -> ArchiveReport:
        """Archive every item; ``on_batch`` hears each batch's outcomes once they are durable.

        With ``flush`` the index is committed and healed at the end, so everything is
        searchable on return; a caller that archives continuously (the spool drain) passes
        False and calls flush() when idle, instead of paying an index commit per call.
        """
        report = ArchiveReport()
        iterator = iter(items)
        # The workers parse the next LOOKAHEAD batches while one is written and committed,
        # so that they never wait for the parent's fsyncs.
        started: deque[tuple[list[Incoming | Unreadable], _Started]] = deque()
        while True:
            while len(started) <= LOOKAHEAD:
                batch = list(islice(iterator, self.batch_size))
                if not batch:
                    break
                started.append((batch, self._start(batch)))
            if not started:
                break
            batch, current = started.popleft()
            outcomes = self._finish(batch, current)
            for outcome in outcomes:
                report.add(outcome)
            if on_batch is not None:
                on_batch(outcomes)
        if flush:
            self.flush()
        return report

    def flush(self) -> None:
        """Make everything archived so far searchable: commit the index, record the
        watermark, and index what others queued. An index that cannot be written leaves
        ``vault.index_problem`` set instead of raising; a later flush tries again."""
        self._commit_index(force=True)
        # Record the last batch's watermark now, or healing would index that batch again
        # and a reader opening the vault meanwhile would think the index is behind.
        self._flush_watermark()
        self.vault.heal_index()
        self._index_failing = bool(self.vault.index_problem) and self._index_failing

    # -- one batch -------------------------------------------------------------------------

    def _start(self, batch: list[Incoming | Unreadable]) -> _Started:
        """Hash the batch, find what is new, and hand the new messages to the workers."""
        started = _Started()
        for item in batch:
            if isinstance(item, Unreadable):
                started.refused.append((item.provenance, item.reason, 0))
                continue
            reason = self._refusal(item.raw)
            if reason:
                started.refused.append((item.provenance, reason, len(item.raw)))
                continue
            digest = hashlib.sha256(item.raw).hexdigest()
            started.accepted.append((item, digest))
        with self.vault.engine.connect() as conn:
            started.known = catalog.known(conn, (d for _, d in started.accepted))
        seen: set[str] = set()
        new_raws: list[tuple[bytes, KnownMessage | None]] = []
        for item, digest in started.accepted:
            if digest not in started.known and digest not in seen:
                seen.add(digest)
                started.new_order.append(digest)
                new_raws.append((item.raw, item.known))
        self._ensure_dictionary([raw for raw, _ in new_raws])
        chunk = max(1, min(64, len(new_raws) // (self._workers * 2) or 1))
        for start in range(0, len(new_raws), chunk):
            started.futures.append(
                self._pool.submit(prepare_chunk, new_raws[start:start + chunk], self.config))
        return started

    def _ensure_dictionary(self, samples: list[bytes]) -> None:
        """Give the workers the tier's zstd dictionary; train one on the first batch with
        enough new messages when the tier has none (Active only: the other tiers train
        theirs when mail moves there)."""
        if self.config.dictionary is not None or self.tier != "active":
            return
        size = self.vault.settings.store.dictionary_kb * 1024
        if size <= 0:
            return
        engine, keyring = self.vault.engine, self.vault.keyring
        dict_id = dictionaries.newest(engine, self.tier)
        if dict_id is not None:
            data: bytes | None = dictionaries.load(engine, keyring, dict_id)
        else:
            # Headers and text are what repeats; long attachments would only crowd them out.
            data = dictionaries.train([raw[:DICTIONARY_SAMPLE_BYTES] for raw in samples], size)
            if data is None:
                return
            dictionaries.save(engine, keyring, self.tier, data)
        self.config = replace(self.config, dictionary=data)

    def _refusal(self, raw: bytes) -> str:
        if not raw.strip():
            return "empty: no bytes to archive" if not raw else "empty: only white space"
        if len(raw) > self.max_bytes:
            return (f"too large: {len(raw) / 1048576:.1f} MB is over the "
                    f"{self.max_bytes // 1048576} MB limit")
        return ""

    def _finish(self, batch: list[Incoming | Unreadable], started: _Started) -> list[Outcome]:
        prepared: dict[str, Prepared] = {}
        results: Iterator[Prepared] = (p for f in started.futures for p in f.result())
        for digest, item in zip(started.new_order, results, strict=True):
            prepared[digest] = item
        # The batch was hashed while the one before it was still being committed: whatever
        # that one archived is known now, not new.
        with self.vault.engine.connect() as conn:
            committed_meanwhile = catalog.known(conn, prepared)
        for digest, message_id in committed_meanwhile.items():
            del prepared[digest]
            started.known[digest] = message_id
        first_arrival = {digest: item for item, digest in reversed(started.accepted)}
        new_messages = self._write_blobs(prepared, first_arrival)
        try:
            with self.vault.engine.begin() as conn:
                outcomes = self._commit(conn, started, new_messages, prepared)
        except OperationalError as exc:
            raise catalog.translate(exc) from exc
        rejected = self._index(new_messages, prepared, started, outcomes)
        if rejected:
            outcomes = [replace(o, index_error=rejected[o.message_id])
                        if o.status == ARCHIVED and o.message_id in rejected else o
                        for o in outcomes]
        return outcomes

    def _write_blobs(self, prepared: dict[str, Prepared],
                     first_arrival: dict[str, Incoming]) -> list[NewMessage]:
        blobs = self.vault.blobs
        with self.vault.engine.connect() as conn:
            stored_parts = catalog.known_parts(
                conn, (p[0].hex() for item in prepared.values() for p in item.parts))
        written_parts: dict[str, Location] = {}
        new_messages = []
        for digest, item in prepared.items():
            parts: list[tuple[str, Location | None, int, bool]] = []
            stored = 0
            for part_hash, compressed, size in item.parts:
                hex_hash = part_hash.hex()
                if hex_hash in stored_parts:
                    parts.append((hex_hash, None, size, False))
                    continue
                if hex_hash not in written_parts:
                    location = blobs.write(self.tier, KIND_PART, part_hash, compressed, size)
                    written_parts[hex_hash] = location
                    stored += location.length
                    parts.append((hex_hash, location, size, True))
                else:
                    parts.append((hex_hash, written_parts[hex_hash], size, False))
            location = blobs.write(self.tier, KIND_MESSAGE, bytes.fromhex(digest),
                                   item.skeleton, item.skeleton_size)
            new_messages.append(_new_message(digest, item, first_arrival[digest], location,
                                             stored + location.length, self.tier, parts))
        blobs.sync()
        return new_messages

    def _commit(self, conn: Connection, started: _Started,
                new_messages: list[NewMessage], prepared: dict[str, Prepared]) -> list[Outcome]:
        ids = dict(started.known)
        ids.update(catalog.add_messages(conn, new_messages))
        outcomes: list[Outcome] = []
        fresh = {m.sha256 for m in new_messages}
        gained = catalog.add_provenances(conn, [(ids[d], item.provenance)
                                                for item, d in started.accepted])
        catalog.resolve_failures(conn, (item.provenance for item, _ in started.accepted))
        for item, digest in started.accepted:
            message_id = ids[digest]
            if digest in fresh:
                fresh.discard(digest)
                defects = len(prepared[digest].fields.defects)
                outcomes.append(Outcome(item.provenance, ARCHIVED, message_id, digest,
                                        len(item.raw), defects))
            else:
                outcomes.append(Outcome(item.provenance, DUPLICATE, message_id, digest,
                                        len(item.raw)))
        # Messages archived before this batch need a new document when they gained an
        # arrival (another folder, another envelope); new ones get theirs in _index().
        known_ids = set(started.known.values())
        catalog.queue_reindex(conn, gained & known_ids)
        for prov, reason, size in started.refused:
            catalog.record_failure(conn, prov, reason)
            outcomes.append(Outcome(prov, REFUSED, size=size, reason=reason))
        if self._pending_watermark is not None:
            catalog.set_watermark(conn, self._pending_watermark)
            self._pending_watermark = None
        archived = [o for o in outcomes if o.status == ARCHIVED]
        if outcomes:
            # The entry lists what this batch archived, so that the audit log can later name
            # any message that left the catalog other than by disposition.
            hashes = sorted(o.sha256 for o in archived if o.sha256)
            audit.record(conn, self.actor, "ingest", {
                "sha256": hashes,
                "sha256_digest": audit.batch_digest(hashes),
                "tier": self.tier,
                "archived": len(archived),
                "duplicates": sum(o.status == DUPLICATE for o in outcomes),
                "refused": len(started.refused),
                "sources": sorted({o.provenance.kind + ":" + shown(o.provenance.source)
                                   for o in outcomes})[:20],
                "first_id": min((o.message_id for o in archived if o.message_id), default=None),
                "last_id": max((o.message_id for o in archived if o.message_id), default=None),
            })
        return outcomes

    def _index(self, new_messages: list[NewMessage], prepared: dict[str, Prepared],
               started: _Started, outcomes: list[Outcome]) -> dict[int, str]:
        """Add the new messages' documents; returns those the index would not take (id ->
        reason), recorded as failures: one such message never stops the batch."""
        if not new_messages or self._index_failing:
            # While the index cannot be written, its documents wait for healing (above the
            # watermark, they are found again from the catalog).
            return {}
        arrivals: dict[str, list[Provenance]] = {}
        for item, digest in started.accepted:
            arrivals.setdefault(digest, []).append(item.provenance)
        ids = {o.sha256: o.message_id for o in outcomes if o.status == ARCHIVED}
        docs = []
        for msg in new_messages:
            message_id = ids[msg.sha256]
            assert message_id is not None
            docs.append(with_arrivals(prepared[msg.sha256].doc, message_id,
                                      arrivals[msg.sha256]))
        index = self.vault.index
        if index.lost_writers != self._writer_epoch:
            self._uncommitted = []
            self._writer_epoch = index.lost_writers
        try:
            rejected = index.put(docs, replace=False)
        except StoreError as exc:
            self._index_failed(exc)
            return {}
        if rejected:
            hashes = {o.message_id: o.sha256 or "" for o in outcomes if o.status == ARCHIVED}
            with self.vault.engine.begin() as conn:
                catalog.record_index_failures(
                    conn, {i: (hashes[i], reason) for i, reason in rejected.items()})
        # A rejected document is done with too (it is a recorded failure, which reindex
        # tries again): the watermark may pass it, or healing would retry it for ever.
        self._uncommitted.extend(d.id for d in docs)
        self._commit_index(force=False)
        return rejected

    def _commit_index(self, force: bool) -> None:
        """Commit the index every INDEX_COMMIT_DOCS documents or ``index_commit_s`` seconds
        (a commit costs tens of milliseconds), then let the watermark follow."""
        if not self._uncommitted:
            return
        due = (len(self._uncommitted) >= INDEX_COMMIT_DOCS
               or time.monotonic() - self._last_commit >= self.index_commit_s)
        if not (force or due):
            return
        index = self.vault.index
        if index.lost_writers != self._writer_epoch:
            # The writer they were added to failed (in healing, say): they are not indexed.
            self._uncommitted = []
            return
        watermark = self._watermark_after(set(self._uncommitted))
        try:
            index.commit(watermark=watermark)
        except StoreError as exc:
            self._index_failed(exc)
            return
        self._last_commit = time.monotonic()
        self._uncommitted = []
        if watermark is not None:
            self._pending_watermark = watermark

    def _watermark_after(self, ours: set[int]) -> int | None:
        """The watermark once ``ours`` are committed, or None if it cannot move."""
        with self.vault.engine.connect() as conn:
            watermark = self._pending_watermark
            if watermark is None:
                # The lower of the catalog's and the index's own watermark: a vault whose
                # index is behind (disk was full, an older copy) must not count it caught up.
                watermark = indexing.indexed_through(self.vault, conn).watermark
            above = {i for i in ours if i > watermark}
            # The watermark may only move over ids that are all indexed (no other writer's).
            if above and catalog.count_ids_between(conn, watermark, max(above)) == len(above):
                return max(above)
        return None

    def _index_failed(self, exc: StoreError) -> None:
        """The index lost what was added since its last commit: keep the watermark where it
        is and say why; healing indexes those messages once the index can be written."""
        self._uncommitted = []
        self._writer_epoch = self.vault.index.lost_writers
        self._index_failing = True
        self.vault.index_problem = str(exc)


@dataclass
class _Started:
    accepted: list[tuple[Incoming, str]] = field(default_factory=list)
    refused: list[tuple[Provenance, str, int]] = field(default_factory=list)
    known: dict[str, int] = field(default_factory=dict)
    new_order: list[str] = field(default_factory=list)
    futures: list[Future[list[Prepared]]] = field(default_factory=list)


def _new_message(digest: str, item: Prepared, first: Incoming, location: Location,
                 stored: int, tier: str, parts: list[tuple[str, Location | None, int, bool]]
                 ) -> NewMessage:
    # Envelope addresses are added with the arrivals (catalog.add_provenances), every
    # arrival's, not only the first one's.
    return NewMessage(sha256=digest, size=len(first.raw), stored_bytes=stored, tier=tier,
                      location=location, folder=shown(first.provenance.folder or ""),
                      fields=item.fields, addresses=item.fields.addresses,
                      parts=parts)
