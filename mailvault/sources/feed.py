"""Many readers, one pipeline: reader threads (one connection each) put items on a bounded
queue; the pipeline drains it from the calling thread. The queue is bounded in items and in
bytes, which with the fetch batch limits bounds memory whatever the mailbox size; and
since each reader puts a folder's messages in UID order and the pipeline commits batches in
order, "every UID up to the highest in a durable batch is durable" holds per folder."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mailvault.errors import SourceError
from mailvault.records import Incoming, Unreadable

Item = Incoming | Unreadable
POLL_S = 0.2


@dataclass(frozen=True)
class ReaderEnd:
    """A reader finished: cleanly, or with the error that stopped it."""

    account: str
    error: BaseException | None


class Feed:
    """A bounded hand-over from reader threads to the pipeline."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self._queue: queue.Queue[Item | ReaderEnd] = queue.Queue(max(1, max_items))
        self._max_bytes = max_bytes
        self._held = 0
        self._room = threading.Condition()
        self.stop = threading.Event()

    @property
    def held_bytes(self) -> int:
        """Bytes of messages waiting in the feed now."""
        with self._room:
            return self._held

    def run_reader(self, account: str, read: Callable[[], Iterator[Item]]) -> None:
        """Run in a reader thread: put everything ``read()`` yields, then the end marker."""
        error: BaseException | None = None
        items = read()
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the pipeline's thread, which re-raises bugs
            error = exc
        finally:
            # A reader left behind (the pipeline stopped) logs out now, not at collection.
            close = getattr(items, "close", None)
            if close is not None:
                close()
        self._put(ReaderEnd(account, error))

    def _put(self, item: Item | ReaderEnd) -> bool:
        size = len(item.raw) if isinstance(item, Incoming) else 0
        with self._room:
            # Wait for room in bytes too; one item always fits in an empty feed.
            while self._held and self._held + size > self._max_bytes:
                if self.stop.is_set():
                    return False
                self._room.wait(POLL_S)
            self._held += size
        while not self.stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _taken(self, item: Item | ReaderEnd) -> None:
        if isinstance(item, Incoming):
            with self._room:
                self._held -= len(item.raw)
                self._room.notify_all()

    def items(self, readers: int, on_end: Callable[[ReaderEnd], None]) -> Iterator[Item]:
        """Everything the readers put, until each has ended. A SourceError ends only its
        reader (``on_end`` hears it); any other exception is a bug and is raised here."""
        ended = 0
        while ended < readers:
            item = self._queue.get()
            self._taken(item)
            if isinstance(item, ReaderEnd):
                ended += 1
                if item.error is not None and not isinstance(item.error, SourceError):
                    raise item.error
                on_end(item)
                continue
            yield item
