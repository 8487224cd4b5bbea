"""Append-only volume files: many blobs per file, one fsync per batch.

Creating a file costs about a millisecond here, appending to an open one a few microseconds,
so blobs are appended to large volume files (the Haystack / git-pack idea) and the catalog
records (volume, offset, length). A full volume is sealed: made read-only on disk and never
written again. A record that was appended but not fsynced and committed is simply never
referenced, so a crash leaves at worst unreferenced bytes at a volume's end.

Record layout: a fixed header (magic, kind, key id, SHA-256, plain length, payload length)
followed by the payload, so that a volume can be walked and checked without the catalog.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailvault.errors import StorageFullError, StoreError
from mailvault.store import file_modes

RECORD_MAGIC = b"MVB\x01"
RECORD_HEADER = struct.Struct(">4sBxH32sQQ")  # magic, kind, key id, sha256, plain len, payload len


@dataclass(frozen=True)
class RecordHeader:
    """The fixed header in front of every blob in a volume."""

    kind: int
    key_id: int
    sha256: bytes
    plain_length: int
    payload_length: int

    def pack(self) -> bytes:
        return RECORD_HEADER.pack(RECORD_MAGIC, self.kind, self.key_id, self.sha256,
                                  self.plain_length, self.payload_length)

    def aad(self) -> bytes:
        """What the payload's authentication covers besides the payload itself."""
        return self.pack()[4:]

    @classmethod
    def unpack(cls, data: bytes) -> RecordHeader:
        magic, kind, key_id, sha, plain, payload = RECORD_HEADER.unpack(data)
        if magic != RECORD_MAGIC:
            raise StoreError("a volume record does not start with the record marker.")
        return cls(kind, key_id, sha, plain, payload)


@dataclass(frozen=True)
class Location:
    """Where a record sits: volume id, offset of its header, total record length."""

    volume: int
    offset: int
    length: int


class Volumes:
    """The volume files of one tier folder: appends to the open volume, reads from any.

    ``new_volume_id`` hands out globally unique ids (the catalog keeps the list), so that a
    location never needs to know which folder a volume lives in.
    """

    def __init__(self, folder: Path, max_bytes: int, paths: Callable[[int], Path],
                 new_volume_id: Callable[[Path], int], current: int | None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._path_of = paths
        self._new_volume_id = new_volume_id
        self._current = current
        self._file: int | None = None
        self._size = 0
        self._dirty = False
        self._new_file = False
        # When this process began appending to the open volume (monotonic seconds).
        self._opened_at: float | None = None
        self._readers: dict[int, int] = {}
        # Under serve, the drain and the lifecycle pass may write one tier from two threads.
        self._lock = threading.RLock()

    @property
    def current(self) -> int | None:
        """The id of the volume open for appends (None when none is open)."""
        return self._current

    def append(self, record: bytes) -> Location:
        """Append one record to the open volume (not yet durable: call sync())."""
        with self._lock:
            fd = self._writable()
            offset = self._size
            try:
                written = os.write(fd, record)
                while written < len(record):
                    written += os.write(fd, record[written:])
            except OSError as exc:
                # A short write leaves bytes no catalog row will ever point at; cut them off.
                self._truncate_to(offset)
                raise _store_error(exc, "append to a volume") from exc
            self._size += len(record)
            self._dirty = True
            assert self._current is not None
            return Location(self._current, offset, len(record))

    def sync(self) -> None:
        """Make every appended record durable (one fsync for the whole batch)."""
        with self._lock:
            if self._file is None or not self._dirty:
                return
            try:
                os.fsync(self._file)
                if self._new_file:
                    _fsync_dir(self.folder)
                    self._new_file = False
            except OSError as exc:
                raise _store_error(exc, "sync a volume") from exc
            self._dirty = False
            if self._size >= self.max_bytes:
                self.seal()

    def seal(self) -> None:
        """Close the open volume for good and make it read-only on disk."""
        with self._lock:
            if self._file is None or self._current is None:
                return
            os.fsync(self._file)
            # Read-only before the lock is released: whoever locks it next sees it sealed.
            os.chmod(self._path_of(self._current), file_modes.READ_ONLY_MODE)
            os.close(self._file)
            self._file = None
            self._current = None
            self._opened_at = None

    def seal_older_than(self, seconds: float) -> bool:
        """Seal the open volume if this process began appending to it at least ``seconds``
        ago; whether it did."""
        with self._lock:
            if self._opened_at is None or time.monotonic() - self._opened_at < seconds:
                return False
            self.seal()
            return True

    def read(self, location: Location) -> bytes:
        """The record at a location (header and payload)."""
        fd = self._readers.get(location.volume)
        try:
            if fd is None:
                fd = os.open(self._path_of(location.volume), os.O_RDONLY)
                self._readers[location.volume] = fd
            data = os.pread(fd, location.length, location.offset)
        except OSError as exc:
            raise StoreError(f"volume {location.volume} cannot be read: {exc.strerror}.") from exc
        if len(data) != location.length:
            raise StoreError(f"volume {location.volume} ends before the record at "
                             f"offset {location.offset}: it was truncated.")
        return data

    def retire(self, volume_id: int) -> None:
        """Stop appending to a volume (seal it if this process has it open) and drop its
        reader, so that compaction can replace it."""
        with self._lock:
            if self._current == volume_id:
                if self._file is not None:
                    self.seal()
                else:
                    self._current = None
            fd = self._readers.pop(volume_id, None)
            if fd is not None:
                os.close(fd)

    def close(self) -> None:
        """Release file handles (appended data should have been synced)."""
        with self._lock:
            if self._file is not None:
                os.close(self._file)
                self._file = None
            for fd in self._readers.values():
                os.close(fd)
            self._readers.clear()

    def _writable(self) -> int:
        if self._file is not None:
            return self._file
        if self._current is not None:
            path = self._path_of(self._current)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                fd = None
            except OSError as exc:
                raise _store_error(exc, "open a volume") from exc
            if fd is not None and lock_exclusive(fd):
                info = os.fstat(fd)
                self._file, self._size = fd, info.st_size
                if info.st_mode & stat.S_IWUSR and info.st_nlink and self._size < self.max_bytes:
                    self._opened_at = time.monotonic()
                    return self._file
                if info.st_mode & stat.S_IWUSR and info.st_nlink:
                    self.seal()
                else:
                    os.close(fd)
                    self._file = None
            elif fd is not None:
                # Another process appends to it (or compacts it): start a volume of our own.
                os.close(fd)
            self._current = None
        try:
            file_modes.make_folder(self.folder)
            self._current = self._new_volume_id(self.folder)
            self._file = file_modes.open_new(self._path_of(self._current),
                                             os.O_WRONLY | os.O_APPEND | os.O_EXCL)
            lock_exclusive(self._file)
        except OSError as exc:
            raise _store_error(exc, "create a volume") from exc
        self._size = 0
        self._new_file = True
        self._opened_at = time.monotonic()
        return self._file

    def _truncate_to(self, size: int) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._file, size)


def lock_exclusive(fd: int) -> bool:
    """Take the volume's append lock without waiting; False when another open file holds it.

    One process appends to a volume at a time (its offsets come from its own count of what
    it wrote), and compaction replaces only a volume nobody holds.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def walk_records(path: Path) -> Iterator[tuple[int, RecordHeader]]:
    """Every (offset, header) in a volume file, stopping at the first unreadable record."""
    with open(path, "rb") as handle:
        offset = 0
        while True:
            head = handle.read(RECORD_HEADER.size)
            if len(head) < RECORD_HEADER.size:
                return
            try:
                header = RecordHeader.unpack(head)
            except StoreError:
                return
            yield offset, header
            offset += RECORD_HEADER.size + header.payload_length
            handle.seek(offset)


def _store_error(exc: OSError, action: str) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"the disk is full: could not {action}.")
    return StoreError(f"could not {action}: {exc.strerror or exc}.")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
