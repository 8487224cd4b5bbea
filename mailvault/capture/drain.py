"""The drain: a thread that feeds spooled messages into the pipeline, in order, and tells the
spool how far the vault has committed so it can delete segments.

Every read starts after the last committed record, so a failed batch (vault disk full, index
locked) is simply read and tried again after a pause; what that batch had already committed
comes back as a duplicate, which adds nothing (the pipeline dedups by hash and provenance).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator

from mailvault.capture.arrival import to_incoming
from mailvault.capture.spool import Position, Spool, SpooledMessage
from mailvault.capture.status import CaptureStatus
from mailvault.errors import MailvaultError
from mailvault.ingest.pipeline import REFUSED, Outcome, Pipeline
from mailvault.ingest.provenance import Incoming

_IDLE_WAIT_S = 0.2
_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 10.0


class Drain:
    """Runs ``pipeline.archive_many`` over the spool until stopped."""

    def __init__(self, spool: Spool, pipeline: Pipeline, status: CaptureStatus) -> None:
        self.spool = spool
        self.pipeline = pipeline
        self.status = status
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._committed = Position(0, 0)
        self._finish_by = 0.0
        # A read takes a few pipeline batches, so the pipeline can prepare the next batch
        # while it commits the current one.
        self._read_size = pipeline.batch_size * 4

    def start(self) -> None:
        """Start the drain thread."""
        self._thread = threading.Thread(target=self._run, name="spool-drain", daemon=True)
        self._thread.start()

    def stop(self, finish_within: float = 0.0) -> None:
        """Stop; with ``finish_within``, first archive what the spool holds, for up to that
        many seconds (whatever is left stays in the spool and is replayed on the next start)."""
        self._finish_by = time.monotonic() + finish_within
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        retry = _RETRY_FIRST_S
        while True:
            stopping = self._stop.is_set()
            if stopping and time.monotonic() >= self._finish_by:
                return
            records = self.spool.read(self._committed, self._read_size,
                                      0 if stopping else _IDLE_WAIT_S)
            if not records:
                if stopping:
                    return
                continue
            try:
                self._archive(records)
                retry = _RETRY_FIRST_S
            except MailvaultError as exc:
                self.status.error(f"archiving from the spool failed (will retry): {exc}")
                self._stop.wait(retry)
                retry = min(retry * 2, _RETRY_MAX_S)
            except Exception as exc:
                # A bug or an untranslated library error must not stop the drain: the spool
                # keeps the messages, and the status shows the error until it is fixed.
                self.status.error(f"archiving from the spool failed (will retry): "
                                  f"{type(exc).__name__}: {exc}")
                self._stop.wait(retry)
                retry = min(retry * 2, _RETRY_MAX_S)

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
            for outcome in outcomes:
                self.status.drained(outcome.status)
                if outcome.status == REFUSED:
                    self.status.error(f"the vault refused a captured message: {outcome.reason}")
            self._committed = last
            self.spool.committed(last)

        self.pipeline.archive_many(items(), on_batch=on_batch)
