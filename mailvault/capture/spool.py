"""The spool: received messages, fsynced before the sender hears 250, until the vault has them.

Messages are appended to segment files (``000000000001.seg``, ...), never rewritten. Each
record is a header (marker, provenance length, raw length), the provenance as JSON, the raw
bytes exactly as received, and a CRC-32 over provenance and raw, so a record torn by a crash
is recognised and ignored (its sender never heard 250 for it). Envelope text a client sent
that is not UTF-8 is recorded readable with its exact bytes beside it (``client_text.py``),
so every message a session took can be recorded.

Group commit: sessions append on the event loop and wait; one syncer thread fsyncs every
segment written since its last pass and then wakes all the sessions whose records that pass
covered, so a hundred concurrent sessions share one fsync instead of paying one each. The
sessions of a pass are woken by one call onto the event loop, and the syncer and the readers
wait on separate conditions, so an append wakes only the syncer (and only when it is idle):
the event loop, which speaks SMTP for every session, is not made to hand the GIL to a thread
per message.

In-flow control: when the vault falls behind (more than ``in_flow_depth`` records not yet
committed), ``store()`` first waits for it to catch up, up to ``in_flow_delay_s``, as Postfix's
``in_flow_delay`` does. Clients then wait for their 250 instead of filling the spool faster than
it drains, so under sustained load the spool, and the time from 250 to searchable, stay
bounded. When the vault does not catch up in time (it is down), the message is spooled anyway:
the spool's size limit is what finally answers 4xx.

The drain (``capture/drain.py``, in the archiver process) reads records back up to what is
fsynced and tells the spool how far the vault has committed; a segment file is deleted only
when it is sealed and every record in it is committed. On start, every segment left over is
read again: the pipeline dedups by hash, so replaying what was already archived adds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from mailvault.capture.client_text import recorded
from mailvault.errors import StorageFullError, StoreError
from mailvault.records import Provenance
from mailvault.store import file_modes

RECORD_MAGIC = b"MVS\x01"
RECORD_HEADER = struct.Struct(">4sIQ")  # marker, provenance length, raw length
RECORD_TRAILER = struct.Struct(">I")  # CRC-32 of provenance + raw
SEGMENT_SUFFIX = ".seg"
_RETRY_SYNC_S = 0.5
# A sync pass starts at most this often. Under load an fsync (about 1 ms here) otherwise
# covers one or two messages, and every pass costs the SMTP process kernel time and a hand-over
# of the GIL; waiting a little lets a pass take the records of many sessions at once. After a
# quiet spell the first message is synced at once.
SYNC_INTERVAL_S = 0.003
# How often a store held back by in-flow control looks at the depth again.
_IN_FLOW_POLL_S = 0.005
# Reading back: one read() per this many bytes, not two per record.
_READ_BUFFER = 1 << 20
_PROVENANCE_FIELDS = tuple(f.name for f in fields(Provenance))


@dataclass(frozen=True)
class Position:
    """The end of a record: everything in ``segment`` before ``offset``."""

    segment: int
    offset: int


@dataclass(frozen=True)
class SpooledMessage:
    """One record read back from the spool."""

    position: Position
    raw: bytes
    provenance: Provenance


def encode_record(raw: bytes, provenance: Provenance) -> bytes:
    """The bytes of one spool record (any provenance can be recorded: see ``recorded``)."""
    try:
        meta = json.dumps(_provenance_meta(provenance), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # Bytes a client sent that are not UTF-8: recorded readable, the bytes kept in extra.
        # Only such a record pays for the conversion.
        meta = json.dumps(_provenance_meta(recorded(provenance)), ensure_ascii=False).encode()
    crc = zlib.crc32(raw, zlib.crc32(meta))
    return b"".join((RECORD_HEADER.pack(RECORD_MAGIC, len(meta), len(raw)), meta, raw,
                     RECORD_TRAILER.pack(crc)))


def _provenance_meta(provenance: Provenance) -> dict[str, object]:
    """Provenance.to_json() without the fields left at None or empty (from_json restores
    them): a record is encoded on the event loop for every message, so it is kept short."""
    data: dict[str, object] = {}
    for name in _PROVENANCE_FIELDS:
        value = getattr(provenance, name)
        if value is not None and value != ():
            data[name] = value
    for name in ("internal_date", "received_at"):
        if name in data:
            data[name] = getattr(provenance, name).isoformat()
    if provenance.extra:
        data["extra"] = dict(provenance.extra)
    return data


def read_records(path: Path, segment: int, start: int = 0,
                 stop: int | None = None) -> Iterator[SpooledMessage]:
    """The whole records in ``path`` from ``start`` up to ``stop``; ends at a torn record."""
    with path.open("rb", buffering=_READ_BUFFER) as f:
        f.seek(start)
        offset = start
        while stop is None or offset < stop:
            head = f.read(RECORD_HEADER.size)
            if len(head) < RECORD_HEADER.size:
                return
            magic, meta_len, raw_len = RECORD_HEADER.unpack(head)
            if magic != RECORD_MAGIC:
                return
            body = f.read(meta_len + raw_len + RECORD_TRAILER.size)
            if len(body) < meta_len + raw_len + RECORD_TRAILER.size:
                return
            meta, raw = body[:meta_len], body[meta_len:meta_len + raw_len]
            (crc,) = RECORD_TRAILER.unpack(body[meta_len + raw_len:])
            if zlib.crc32(raw, zlib.crc32(meta)) != crc:
                return
            offset += RECORD_HEADER.size + len(body)
            try:
                provenance = Provenance.from_json(json.loads(meta))
            except (ValueError, TypeError):
                return
            yield SpooledMessage(Position(segment, offset), raw, provenance)


@dataclass(frozen=True)
class Span:
    """Bytes ``start``..``stop`` of a segment: whole, fsynced records."""

    segment: int
    start: int
    stop: int


def read_spans(folder: Path, spans: list[Span], max_items: int) -> list[SpooledMessage]:
    """The records in these spans, in order, at most ``max_items``."""
    found: list[SpooledMessage] = []
    for span in spans:
        path = segment_path(folder, span.segment)
        for record in read_records(path, span.segment, span.start, span.stop):
            found.append(record)
            if len(found) >= max_items:
                return found
    return found


def segment_path(folder: Path, segment: int) -> Path:
    """The file of segment number ``segment``."""
    return folder / f"{segment:012d}{SEGMENT_SUFFIX}"


def _segments_in(folder: Path) -> list[int]:
    found = []
    for path in folder.glob("*" + SEGMENT_SUFFIX):
        if path.stem.isdigit():
            found.append(int(path.stem))
    return sorted(found)


@dataclass
class _Segment:
    number: int
    fd: int | None  # open for appending; None once sealed and synced (or left from a crash)
    written: int
    synced: int
    sealed: bool


@dataclass(frozen=True)
class SpoolState:
    """What ``status`` shows: records waiting for the vault, their bytes, the oldest one."""

    depth: int
    bytes: int
    segments: int
    oldest_received: float | None


class Spool:
    """An open spool folder. ``store()`` on the event loop; ``readable()``/``committed()`` for
    the archiver. ``start()`` launches the syncer thread, ``close()`` stops it."""

    def __init__(self, folder: Path, segment_bytes: int, limit_bytes: int,
                 in_flow_depth: int = 0, in_flow_delay_s: float = 0.0) -> None:
        self.folder = folder
        self.segment_bytes = max(segment_bytes, 1 << 16)
        self.limit_bytes = limit_bytes
        self.in_flow_depth = in_flow_depth
        self.in_flow_delay_s = in_flow_delay_s
        self._lock = threading.Lock()
        # The syncer waits for appends; readers wait for what a sync pass made readable.
        self._to_sync = threading.Condition(self._lock)
        self._synced = threading.Condition(self._lock)
        self._held = 0  # bytes in all segments, for the size limit
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        # (segment, end, time received) of every record the vault has not committed yet.
        self._pending: deque[tuple[int, int, float]] = deque()
        self._committed = Position(0, 0)
        self._syncer: threading.Thread | None = None
        self._closing = False
        try:
            file_modes.make_folder(folder)
        except OSError as exc:
            raise StoreError(f"the spool folder {folder} cannot be created: "
                             f"{exc.strerror}.") from exc
        for number in _segments_in(folder):
            end = 0
            for record in read_records(segment_path(folder, number), number):
                end = record.position.offset
                self._pending.append((number, end, _received(record.provenance)))
            self._segments[number] = _Segment(number, None, end, end, True)
            self._held += end

    # -- writing (event loop) --------------------------------------------------------------

    def start(self) -> None:
        """Start the syncer thread (group commit)."""
        self._syncer = threading.Thread(target=self._sync_loop, name="spool-sync", daemon=True)
        self._syncer.start()

    async def store(self, raw: bytes, provenance: Provenance) -> Position:
        """Append a message and return once it is fsynced; raises StoreError if it cannot be
        (disk full, I/O error, spool over its limit): the caller answers 4xx."""
        loop = asyncio.get_running_loop()
        if self.in_flow_depth and len(self._pending) > self.in_flow_depth:
            await self._in_flow_wait(loop)
        waiter: asyncio.Future[None] = loop.create_future()
        position = self._append(encode_record(raw, provenance), waiter)
        await waiter
        return position

    async def _in_flow_wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the vault is within ``in_flow_depth`` records, or the delay is over."""
        deadline = loop.time() + self.in_flow_delay_s
        # The deque's length is read without the lock: a stale value only shifts the wait.
        while len(self._pending) > self.in_flow_depth and loop.time() < deadline:
            await asyncio.sleep(_IN_FLOW_POLL_S)

    def _append(self, record: bytes, waiter: asyncio.Future[None]) -> Position:
        with self._lock:
            if self.limit_bytes and self._held + len(record) > self.limit_bytes:
                raise StorageFullError("the spool is over its size limit (the vault is "
                                       "behind or unavailable).")
            segment = self._writable(len(record))
            assert segment.fd is not None
            try:
                _write_all(segment.fd, record)
            except OSError as exc:
                # Cut the torn record off so the segment stays a clean run of records.
                try:
                    os.ftruncate(segment.fd, segment.written)
                except OSError:
                    self._seal(segment)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StorageFullError("no space is left for the spool.") from exc
                raise StoreError(f"the spool cannot be written: {exc.strerror}.") from exc
            segment.written += len(record)
            self._held += len(record)
            position = Position(segment.number, segment.written)
            self._pending.append((segment.number, segment.written, time.time()))
            self._waiters.append((segment.number, segment.written, waiter))
            # A no-op while the syncer is busy: its next pass takes this record along.
            self._to_sync.notify()
            return position

    def _writable(self, size: int) -> _Segment:
        current = self._current
        if current is not None and current.written + size > self.segment_bytes \
                and current.written > 0:
            self._seal(current)
            current = None
        if current is None:
            number = max(self._segments, default=0) + 1
            try:
                fd = os.open(segment_path(self.folder, number),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
                _sync_folder(self.folder)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StorageFullError("no space is left for the spool.") from exc
                raise StoreError(f"a spool segment cannot be created: {exc.strerror}.") \
                    from exc
            current = _Segment(number, fd, 0, 0, False)
            self._segments[number] = current
            self._current = current
        return current

    def _seal(self, segment: _Segment) -> None:
        """No more appends to this segment; the syncer closes it once it is synced."""
        segment.sealed = True
        if self._current is segment:
            self._current = None

    # -- group commit (syncer thread) -------------------------------------------------------

    def _sync_loop(self) -> None:
        last_pass = 0.0
        while True:
            pause = last_pass + SYNC_INTERVAL_S - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with self._lock:
                while not self._closing and not self._dirty():
                    self._to_sync.wait()
                if self._closing and not self._dirty():
                    return
                work = [(s, s.fd, s.written) for s in self._segments.values()
                        if s.fd is not None and s.written > s.synced]
                closable = [s for s in self._segments.values()
                            if s.fd is not None and s.sealed and s.written == s.synced]
            last_pass = time.monotonic()
            error = None
            for _segment, fd, _written in work:
                try:
                    assert fd is not None
                    os.fsync(fd)
                except OSError as exc:
                    error = exc.strerror or str(exc)
            with self._lock:
                for segment, _fd, written in work:
                    if error is None:
                        segment.synced = max(segment.synced, written)
                for segment in closable:
                    self._close_fd(segment)
                self._wake_waiters(error)
                self._synced.notify_all()
            if error is not None:
                time.sleep(_RETRY_SYNC_S)

    def _dirty(self) -> bool:
        return any(s.fd is not None and (s.written > s.synced or s.sealed)
                   for s in self._segments.values())

    def _close_fd(self, segment: _Segment) -> None:
        if segment.fd is not None:
            # Closing after a successful fsync cannot lose data; an error here must not stop
            # the syncer thread that every session waits on.
            with contextlib.suppress(OSError):
                os.close(segment.fd)
            segment.fd = None

    def _wake_waiters(self, error: str | None) -> None:
        failure = StoreError(f"the spool cannot be synced: {error}.") if error else None
        done: list[asyncio.Future[None]] = []
        still = []
        for number, end, waiter in self._waiters:
            segment = self._segments.get(number)
            if failure is not None or (segment is not None and segment.synced >= end):
                done.append(waiter)
            else:
                still.append((number, end, waiter))
        self._waiters = still
        _resolve_all(done, failure)
        if error is not None and self._current is not None:
            # After a failed fsync the page cache of that file is not to be trusted: later
            # records go to a fresh segment.
            self._seal(self._current)

    # -- reading and releasing (for the archiver) -----------------------------------------------

    def readable(self, after: Position, timeout: float) -> list[Span]:
        """The fsynced spans after ``after`` (waits up to ``timeout`` for one to appear)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                spans = self._readable_spans(after)
                if spans or self._closing:
                    return spans
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._synced.wait(remaining)

    def _readable_spans(self, after: Position) -> list[Span]:
        spans = []
        for number in sorted(self._segments):
            segment = self._segments[number]
            if number < after.segment:
                continue
            start = after.offset if number == after.segment else 0
            if segment.synced > start:
                spans.append(Span(number, start, segment.synced))
        return spans

    def committed(self, position: Position) -> None:
        """Every record up to ``position`` is in the vault: drop segments wholly behind it."""
        with self._lock:
            self._committed = position
            while self._pending and (self._pending[0][0], self._pending[0][1]) <= (
                    position.segment, position.offset):
                self._pending.popleft()
            done = [s for s in self._segments.values() if s.sealed and s.fd is None and (
                s.number < position.segment
                or (s.number == position.segment and position.offset >= s.written))]
            for segment in done:
                del self._segments[segment.number]
                self._held -= segment.written
        try:
            for segment in done:
                segment_path(self.folder, segment.number).unlink(missing_ok=True)
            if done:
                _sync_folder(self.folder)
        except OSError as exc:
            raise StoreError(f"a spool segment cannot be removed: {exc.strerror}.") from exc

    def state(self) -> SpoolState:
        """Depth, bytes and oldest waiting record, for status."""
        with self._lock:
            oldest = self._pending[0][2] if self._pending else None
            return SpoolState(len(self._pending), self._held, len(self._segments), oldest)

    def close(self) -> None:
        """Sync what was written, stop the syncer and close the files."""
        with self._lock:
            self._closing = True
            if self._current is not None:
                self._seal(self._current)
            self._to_sync.notify_all()
            self._synced.notify_all()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock:
            for segment in self._segments.values():
                self._close_fd(segment)
        # A segment that cannot be removed now is replayed (as duplicates) on the next start.
        with contextlib.suppress(StoreError):
            self.committed(self._committed)


def _received(provenance: Provenance) -> float:
    return provenance.received_at.timestamp() if provenance.received_at else time.time()


def _resolve_all(waiters: list[asyncio.Future[None]], error: Exception | None) -> None:
    """Settle ``waiters`` from the syncer thread: one call per event loop, not one per waiter
    (each call_soon_threadsafe writes to the loop's wake-up socket)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for waiter in waiters:
        by_loop.setdefault(waiter.get_loop(), []).append(waiter)
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, group, error)
        except RuntimeError:
            continue  # that loop is closed: nobody is waiting for an answer any more


def _settle(waiters: list[asyncio.Future[None]], error: Exception | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue  # the session went away (timeout, disconnect) before the fsync
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
