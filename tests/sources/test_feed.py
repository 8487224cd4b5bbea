"""The hand-over from reader threads to the pipeline: bounded, ordered per reader, and a
reader's SourceError ends only that reader."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from mailvault.errors import SourceError
from mailvault.records import Incoming, Provenance
from mailvault.sources.feed import Feed, Item, ReaderEnd


def _items(account: str, count: int, size: int) -> Iterator[Item]:
    for uid in range(1, count + 1):
        yield Incoming(b"x" * size, Provenance("imap", "s", "INBOX", account, uid=uid))


def test_bounded_in_bytes_ordered_per_reader_errors_kept_apart() -> None:
    feed = Feed(max_items=100, max_bytes=10_000)
    ended: list[ReaderEnd] = []

    def failing() -> Iterator[Item]:
        yield from _items("b", 5, 3_000)
        raise SourceError("the connection dropped", retryable=True)

    readers = [threading.Thread(target=feed.run_reader, args=("a", lambda: _items("a", 50, 3_000))),
               threading.Thread(target=feed.run_reader, args=("b", failing))]
    for reader in readers:
        reader.start()
    seen: dict[str, list[int]] = {"a": [], "b": []}
    most_held = 0
    for item in feed.items(2, ended.append):
        most_held = max(most_held, feed.held_bytes)
        seen[item.provenance.account or ""].append(item.provenance.uid or 0)
    for reader in readers:
        reader.join()
    assert seen == {"a": list(range(1, 51)), "b": list(range(1, 6))}
    assert most_held <= 10_000
    assert [(e.account, str(e.error)) for e in ended if e.error] == [
        ("b", "the connection dropped")]


def test_a_bug_in_a_reader_is_raised_in_the_pipeline_thread() -> None:
    feed = Feed(max_items=10, max_bytes=1_000)

    def broken() -> Iterator[Item]:
        raise KeyError("bug")
        yield  # a generator

    thread = threading.Thread(target=feed.run_reader, args=("a", broken))
    thread.start()
    with pytest.raises(KeyError):
        list(feed.items(1, lambda _end: None))
    thread.join()
