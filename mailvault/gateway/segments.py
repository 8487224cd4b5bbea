"""A gateway mailbox's mail as append-only segment files, written with group commit.

Each writer (one per mailbox in a ``GatewayMailboxes``) appends to a segment file of its own,
``<arrival ns>-<random>.seg`` under ``<mailbox>/segments/``, holding an exclusive flock on it
while it is open, so two writers never share a file and a segment whose lock can be taken has
no writer left. A record is

    marker "MVR1" | kind (1 byte) | message id (29 bytes) | payload length (4 bytes)
    | payload | CRC-32 of everything before it but the marker

with kind ``M`` a visible message, ``S`` a staged one (the SMTP proxy's copy before the
provider's answer) and ``C`` the commit of a staged one (no payload). Payloads are sealed
messages (``sealing.seal``): a record is built whole in memory before its first byte is
written. Deletions (and abandoned staged copies) are tombstones: message ids appended to
``<mailbox>/tombstones`` under the mailbox's lock. A segment every record of which is
tombstoned is removed once no writer holds it (``compact``).

Group commit: a writer appends under its lock, then waits until an fsync that started after
its append has finished; while one fsync runs, the appends that come meanwhile wait for the
next, which covers all of them, so twenty concurrent deliveries share one or two fsyncs
instead of paying twenty.

A crash can leave only the last record of a segment torn (its writer got no fsync for it, so
no one was told it was stored): the scan sees a record cut short at a segment's end and
passes over it. A whole record whose bytes were altered is listed, and fails its CRC or its
authentication when read: it is reported and never served. A damaged header (marker or
length) does not hide the records after it: the scan resumes at the next record that passes
its CRC.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailvault.errors import GatewayError, IntegrityError, StorageFullError
from mailvault.store import file_modes

SEGMENTS = "segments"
TOMBSTONES = "tombstones"
MESSAGE = b"M"
STAGED = b"S"
COMMIT = b"C"
_MARKER = b"MVR1"
_HEADER = struct.Struct(">4sc29sI")  # marker, kind, message id, payload length
_TRAILER = struct.Struct(">I")  # CRC-32 of kind, id, length and payload
ID_BYTES = 29
_SEGMENT_NAME = re.compile(r"^[0-9]{20}-[0-9a-f]{8}\.seg$")
# A writer starts a new segment past this size or age, so that a segment whose mail has all
# been pulled is released for removal even in a long-running server.
SEGMENT_MAX_BYTES = 16 * 1024 * 1024
SEGMENT_MAX_AGE_S = 3600.0
# A sync pass starts at most this often, as the spool's do: back to back, an fsync under load
# covers a message or two and wakes every waiting thread; a short wait lets one pass take the
# appends of many sessions. After a quiet spell the first append is synced at once.
SYNC_INTERVAL_S = 0.003


@dataclass(frozen=True)
class Record:
    """Where one record of a segment lies (its payload is read only when asked for)."""

    kind: bytes
    message_id: str
    segment: Path
    offset: int  # of the payload
    length: int


def encode(kind: bytes, message_id: str, payload: bytes = b"") -> bytes:
    """One whole record, ready to append."""
    head = _HEADER.pack(_MARKER, kind, message_id.encode("ascii"), len(payload))
    crc = zlib.crc32(payload, zlib.crc32(head[len(_MARKER):]))
    return head + payload + _TRAILER.pack(crc)


def scan(segment: Path) -> list[Record]:
    """The records of one segment, in order, from their headers. A record cut short at the
    segment's end (torn by a crash) is left out. Where a header was damaged (a bad marker or
    length), the scan goes on at the next whole record, so the mail after it stays listed;
    a damaged record whose header still names it is listed up to that next record, so that
    reading it fails its check and is reported."""
    records: list[Record] = []
    try:
        with segment.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset + _HEADER.size + _TRAILER.size <= size:
                f.seek(offset)
                marker, kind, raw_id, length = _HEADER.unpack(f.read(_HEADER.size))
                end = offset + _HEADER.size + length + _TRAILER.size
                if marker == _MARKER and end <= size:
                    records.append(Record(kind, raw_id.decode("ascii", "replace"), segment,
                                          offset + _HEADER.size, length))
                    offset = end
                    continue
                following = _next_record(f, offset + 1, size)
                if following is None:
                    break  # the torn last record
                if kind in (MESSAGE, STAGED):
                    records.append(Record(kind, raw_id.decode("ascii", "replace"), segment,
                                          offset + _HEADER.size,
                                          following - offset - _HEADER.size - _TRAILER.size))
                offset = following
    except FileNotFoundError:
        return []  # compacted meanwhile: every record in it was deleted
    return records


def _next_record(f: BinaryIO, start: int, size: int) -> int | None:
    """The offset of the next whole record that passes its check at or after ``start``."""
    window = 1 << 16
    position = start
    while position < size:
        f.seek(position)
        chunk = f.read(window + len(_MARKER) - 1)
        found = chunk.find(_MARKER)
        while found >= 0:
            candidate = position + found
            if _whole_record_at(f, candidate, size):
                return candidate
            found = chunk.find(_MARKER, found + 1)
        position += window
    return None


def _whole_record_at(f: BinaryIO, offset: int, size: int) -> bool:
    if offset + _HEADER.size + _TRAILER.size > size:
        return False
    f.seek(offset)
    _marker, _kind, _raw_id, length = _HEADER.unpack(f.read(_HEADER.size))
    if offset + _HEADER.size + length + _TRAILER.size > size:
        return False
    f.seek(offset)
    data = f.read(_HEADER.size + length + _TRAILER.size)
    (crc,) = _TRAILER.unpack(data[-_TRAILER.size:])
    return zlib.crc32(data[len(_MARKER):-_TRAILER.size]) == int(crc)


def read_payload(record: Record) -> bytes:
    """The payload of a record; IntegrityError when the record fails its CRC,
    FileNotFoundError once its segment was removed."""
    with record.segment.open("rb") as f:
        f.seek(record.offset - _HEADER.size)
        data = f.read(_HEADER.size + record.length + _TRAILER.size)
    (crc,) = _TRAILER.unpack(data[-_TRAILER.size:]) if len(data) >= _TRAILER.size else (-1,)
    if zlib.crc32(data[len(_MARKER):-_TRAILER.size]) != crc:
        raise IntegrityError("the record fails its check")
    return data[_HEADER.size:-_TRAILER.size]


def segment_files(mailbox: Path) -> list[Path]:
    """The mailbox's segment files, oldest first."""
    folder = mailbox / SEGMENTS
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if _SEGMENT_NAME.match(path.name))


def records(mailbox: Path) -> Iterator[Record]:
    """Every readable record of every segment, oldest segment first."""
    for segment in segment_files(mailbox):
        yield from scan(segment)


def tombstones(mailbox: Path) -> set[str]:
    """The ids of deleted (or abandoned) messages; a torn last line is passed over."""
    try:
        text = (mailbox / TOMBSTONES).read_bytes()
    except FileNotFoundError:
        return set()
    return {line.decode("ascii") for line in text.split(b"\n")[:-1] if len(line) == ID_BYTES}


def add_tombstones(mailbox: Path, message_ids: list[str]) -> None:
    """Append tombstones durably (the caller holds the mailbox's lock)."""
    if not message_ids:
        return
    data = b"".join(message_id.encode("ascii") + b"\n" for message_id in message_ids)
    path = mailbox / TOMBSTONES
    created = not path.exists()
    fd = file_modes.open_new(path, os.O_WRONLY | os.O_APPEND)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        file_modes.fsync_folder(mailbox)


def held(segment: Path) -> bool:
    """Whether a writer still has the segment open (it holds the segment's flock)."""
    try:
        fd = os.open(segment, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def compact(mailbox: Path) -> int:
    """Remove the segments no writer holds whose every record is tombstoned, then drop the
    tombstones that name no remaining record (the caller holds the mailbox's lock). Returns
    the number of segments removed."""
    dead = tombstones(mailbox)
    removed = 0
    alive: set[str] = set()
    for segment in segment_files(mailbox):
        ids = {record.message_id for record in scan(segment)}
        if ids <= dead and not held(segment):
            segment.unlink()
            removed += 1
        else:
            alive |= ids
    if removed:
        file_modes.fsync_folder(mailbox / SEGMENTS)
        kept = sorted(dead & alive)
        file_modes.write_replacing(mailbox / TOMBSTONES,
                                   b"".join(m.encode("ascii") + b"\n" for m in kept))
        file_modes.fsync_folder(mailbox)
    return removed


class SegmentWriter:
    """One mailbox's appender with group commit (shared by the threads of one process)."""

    def __init__(self, mailbox: Path) -> None:
        self._folder = mailbox / SEGMENTS
        self._lock = threading.Condition()
        self._fd: int | None = None
        self._size = 0
        self._opened = 0.0
        self._appended = 0  # appends written so far
        self._synced = 0  # appends covered by a finished fsync
        self._syncing = False
        self._last_pass = 0.0
        # Segments rolled over whose last appends are not yet covered by an fsync.
        self._unsynced: list[int] = []

    def append(self, record: bytes) -> None:
        """Write ``record`` and return once an fsync covers it (shared with the appends of
        other threads made meanwhile)."""
        self.wait(self.write(record))

    def write(self, record: bytes) -> int:
        """Write ``record`` without waiting for its fsync; returns the ticket ``wait`` takes.
        A failed write is cut off, so the next record starts on a boundary."""
        with self._lock:
            fd = self._current()
            start = self._size
            try:
                _write_all(fd, record)
            except OSError as exc:
                self._undo(fd, start)
                raise write_error(exc) from exc
            self._size += len(record)
            self._appended += 1
            return self._appended

    def wait(self, ticket: int, paced: bool = True) -> None:
        """Return once an fsync covers the write ``ticket`` (and every write before it).
        ``paced=False`` syncs at once: for a caller that gathered its group of writes
        itself (the gateway writer process, one batch at a time)."""
        with self._lock:
            while self._synced < ticket:
                if self._syncing:
                    self._lock.wait()
                    continue
                self._sync_pass(paced)

    def close(self) -> None:
        """Release the current segment (its flock goes with it)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _sync_pass(self, paced: bool) -> None:
        """fsync everything appended so far, outside the lock (called holding it)."""
        self._syncing = True
        pause = self._last_pass + SYNC_INTERVAL_S - time.monotonic()
        if paced and pause > 0:
            # Appends made meanwhile join this pass (see SYNC_INTERVAL_S).
            self._lock.release()
            time.sleep(pause)
            self._lock.acquire()
        self._last_pass = time.monotonic()
        target = self._appended
        rolled = list(self._unsynced)
        fds = [*rolled, self._fd]
        self._lock.release()
        try:
            for fd in fds:
                if fd is not None:
                    os.fsync(fd)
        except OSError as exc:
            self._lock.acquire()
            self._syncing = False
            self._lock.notify_all()
            raise write_error(exc) from exc
        self._lock.acquire()
        for fd in rolled:
            os.close(fd)
        self._unsynced = [fd for fd in self._unsynced if fd not in rolled]
        self._synced = max(self._synced, target)
        self._syncing = False
        self._lock.notify_all()

    def _current(self) -> int:
        if self._fd is not None and (self._size >= SEGMENT_MAX_BYTES
                                     or time.monotonic() - self._opened >= SEGMENT_MAX_AGE_S):
            self._unsynced.append(self._fd)
            self._fd = None
        if self._fd is None:
            file_modes.make_folder(self._folder)
            name = f"{time.time_ns():020d}-{secrets.token_hex(4)}.seg"
            try:
                fd = file_modes.open_new(self._folder / name,
                                         os.O_WRONLY | os.O_EXCL | os.O_APPEND)
                fcntl.flock(fd, fcntl.LOCK_EX)
                file_modes.fsync_folder(self._folder)
            except OSError as exc:
                raise write_error(exc) from exc
            self._fd, self._size, self._opened = fd, 0, time.monotonic()
        return self._fd

    def _undo(self, fd: int, start: int) -> None:
        """Cut a partly written record off, so the next append starts on a record boundary;
        if even that fails, the next append starts a new segment."""
        try:
            os.ftruncate(fd, start)
        except OSError:
            self._unsynced.append(fd)
            self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_error(exc: OSError) -> GatewayError | StorageFullError:
    """The error a failed write of mailbox mail is reported as."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError("the disk is full: a gateway message could not be stored.")
    return GatewayError(f"a gateway mailbox could not be written: {exc.strerror or exc}.")
