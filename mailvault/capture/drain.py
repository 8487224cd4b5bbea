"""The drain: feeds spooled messages into the pipeline, in order, and reports how far the vault
has committed so the spool can delete segments. It runs in the archiver process
(``capture/archiver.py``), which sees the spool through a ``SpoolSource``.

Every read starts after the last committed record, so a failed batch (vault disk full, index
locked) is simply read and tried again after a pause; what that batch had already committed
comes back as a duplicate, which adds nothing (the pipeline dedups by hash and provenance).

An index that cannot be written (its disk is full) does not stop archiving: the drain says
why (``SpoolSource.index``) and heals again and again, mail flowing or not, at a pace that
slows to ``HEAL_RETRY_MAX_S``, until the index has caught up.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from mailvault.capture.arrival import to_incoming
from mailvault.capture.spool import Position, SpooledMessage
from mailvault.errors import MailvaultError
from mailvault.ingest.pipeline import REFUSED, Outcome, Pipeline
from mailvault.records import Incoming

IDLE_WAIT_S = 0.2
# After a read that did not fill a pipeline batch, the next read waits until this long after
# it: under load a read then takes a few hundred messages instead of the few dozen that
# arrived while the last batch was archived, and each pipeline batch has fixed costs
# (catalog queries and transaction, volume fsync, audit entry, work handed to the workers).
# A message waits at most this much longer before it is archived; a full batch goes at once.
GATHER_S = 0.25
HEAL_EVERY_S = 1.0
HEAL_RETRY_MAX_S = 8.0
_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 10.0


class SpoolSource(Protocol):
    """The spool as the drain sees it."""

    def read(self, after: Position, max_items: int, timeout: float) -> list[SpooledMessage] | None:
        """Fsynced records after ``after`` ([] after ``timeout``); None: stop now."""

    def committed(self, position: Position) -> None:
        """Everything up to ``position`` is in the vault."""

    def drained(self, status: str, count: int) -> None:
        """``count`` records ended as ``status`` (archived, duplicate, refused)."""

    def error(self, text: str) -> None:
        """Something failed (one sentence); the drain will try again."""

    def index(self, problem: str) -> None:
        """Why the index is behind the vault (one sentence), or '' once it has caught up."""


class Drain:
    """Runs ``pipeline.archive_many`` over the spool until the source says stop."""

    def __init__(self, source: SpoolSource, pipeline: Pipeline, start: Position,
                 upkeep: Callable[[], None] | None = None) -> None:
        self.source = source
        self.pipeline = pipeline
        # Run after every read, mail or not (it keeps its own pace and reports its own
        # failures): the archiver's uploads to a bucket.
        self._upkeep = upkeep
        self._committed = start
        self._index_problem = ""
        # A read takes a few pipeline batches, so the pipeline can prepare the next batch
        # while it commits the current one.
        self._read_size = pipeline.batch_size * 4

    def run(self) -> None:
        """Archive until the source says stop."""
        retry = _RETRY_FIRST_S
        healed_at = 0.0
        heal_every = HEAL_EVERY_S
        self._report_index()
        while True:
            read_at = time.monotonic()
            records = self.source.read(self._committed, self._read_size, IDLE_WAIT_S)
            if records is None:
                return
            if self._upkeep is not None:
                self._upkeep()
            behind = bool(self.pipeline.vault.index_problem)
            heal_due = time.monotonic() - healed_at >= heal_every
            if not records and not heal_due:
                continue
            try:
                if records:
                    self._archive(records)
                    if len(records) < self.pipeline.batch_size:
                        time.sleep(max(0.0, GATHER_S - (time.monotonic() - read_at)))
                if heal_due and (behind or not records):
                    # This process holds the index writer, so it indexes what others queued
                    # (tier moves, retention) or left behind; they do not wait for the writer.
                    # While the index cannot be written this is also the retry, under load too.
                    healed_at = time.monotonic()
                    self.pipeline.flush()
                    heal_every = (min(heal_every * 2, HEAL_RETRY_MAX_S)
                                  if self.pipeline.vault.index_problem else HEAL_EVERY_S)
                self._report_index()
                retry = _RETRY_FIRST_S
                continue
            except MailvaultError as exc:
                self.source.error(f"archiving from the spool failed (will retry): {exc}")
            except Exception as exc:
                # A bug or an untranslated library error must not stop the drain: the spool
                # keeps the messages, and the status shows the error until it is fixed.
                self.source.error(f"archiving from the spool failed (will retry): "
                                  f"{type(exc).__name__}: {exc}")
            time.sleep(retry)
            retry = min(retry * 2, _RETRY_MAX_S)

    def _report_index(self) -> None:
        problem = self.pipeline.vault.index_problem
        if problem != self._index_problem:
            self._index_problem = problem
            self.source.index(problem)
            if problem:
                self.source.error(f"the index is behind (will retry): {problem}")

    def _archive(self, records: list[SpooledMessage]) -> None:
        positions: deque[Position] = deque()

        def items() -> Iterator[Incoming]:
            for record in records:
                positions.append(record.position)
                yield to_incoming(record.raw, record.provenance)

        def on_batch(outcomes: list[Outcome]) -> None:
            # One outcome per item, so the batch covers the first len(outcomes) positions.
            last = self._committed
            for _ in outcomes:
                last = positions.popleft()
            counts: dict[str, int] = {}
            for outcome in outcomes:
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                if outcome.status == REFUSED:
                    self.source.error(f"the vault refused a captured message: {outcome.reason}")
            self._committed = last
            self.source.committed(last)
            for status, count in counts.items():
                self.source.drained(status, count)

        # The index commits itself every second while mail flows, and flush() runs when the
        # spool is idle: a commit per read would cost more than the archiving.
        self.pipeline.archive_many(items(), on_batch=on_batch, flush=False)
