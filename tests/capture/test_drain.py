"""The drain over a real spool and pipeline: a trickle of mail is archived in gathered reads,
not one pipeline batch per handful of messages."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from mailvault.capture.drain import GATHER_S, Drain
from mailvault.capture.spool import Position, Spool, SpooledMessage, read_spans
from mailvault.ingest.pipeline import Pipeline
from mailvault.records import Provenance
from mailvault.vault import Vault
from tests.capture.conftest import build, message_count

TRICKLE = 120
TRICKLE_EVERY_S = 0.01


class LocalSource:
    """The spool as the drain sees it, in this process; stops once ``expected`` are in."""

    def __init__(self, spool: Spool, expected: int) -> None:
        self.spool = spool
        self.expected = expected
        self.reads: list[int] = []
        self.done = 0

    def read(self, after: Position, max_items: int, timeout: float) -> list[SpooledMessage] | None:
        if self.done >= self.expected:
            return None
        records = read_spans(self.spool.folder, self.spool.readable(after, timeout), max_items)
        if records:
            self.reads.append(len(records))
        return records

    def committed(self, position: Position) -> None:
        self.spool.committed(position)

    def drained(self, status: str, count: int) -> None:
        self.done += count

    def error(self, text: str) -> None:
        raise AssertionError(text)

    def index(self, problem: str) -> None:
        if problem:
            raise AssertionError(problem)


def trickle(spool: Spool) -> None:
    async def run() -> None:
        for i in range(TRICKLE):
            provenance = Provenance(kind="smtp", source="test", envelope_to=("b@example.org",))
            await spool.store(build(f"trickle {i}"), provenance)
            await asyncio.sleep(TRICKLE_EVERY_S)

    asyncio.run(run())


def test_a_trickle_is_archived_in_gathered_reads(vault: Vault, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 24, 0)
    spool.start()
    source = LocalSource(spool, TRICKLE)
    sender = threading.Thread(target=trickle, args=(spool,))
    with Pipeline(vault, actor="test") as pipeline:
        started = time.monotonic()
        sender.start()
        Drain(source, pipeline, Position(0, 0)).run()
        elapsed = time.monotonic() - started
        sender.join()
        pipeline.flush()
    spool.close()
    assert message_count(vault) == TRICKLE
    # Without gathering every read would take the two or three messages that arrived while
    # the last one was archived.
    assert len(source.reads) <= elapsed / GATHER_S + 2
    assert max(source.reads) > 5
