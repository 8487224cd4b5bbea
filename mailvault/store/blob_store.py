"""The blob store interface: what the pipeline, tier moves, compaction and reads use.

Two implementations: ``blobs.VolumeBlobStore`` (volume files on local disk, the embedded
default) and ``objects.ObjectBlobStore`` (the same volumes, written and fsynced locally, then
uploaded as Object Lock objects to an S3-compatible bucket and read back with ranged GETs).
Callers hold a ``BlobStore`` and never ask which one it is; only the upload and lock steps
(compliance/object_lock.py) need the object store's extra methods.
"""

from __future__ import annotations

from typing import Protocol

from mailvault.store.chunks import Chunk, ChunkCache
from mailvault.store.volumes import Location, RecordHeader, Volumes


class BlobStore(Protocol):
    """Seal, append and sync blobs per tier; read them back authenticated and checked."""

    chunks: ChunkCache

    def volumes(self, tier: str) -> Volumes:
        """The volume set of a tier (opened on first use)."""
        ...

    def write(self, tier: str, kind: int, sha256: bytes, compressed: bytes,
              plain_length: int) -> Location:
        """Seal and append one compressed blob; durable only after sync()."""
        ...

    def write_chunk(self, tier: str, plain: bytes, compressed: bytes) -> Location:
        """Seal and append one solid chunk; durable only after sync()."""
        ...

    def sync(self) -> None:
        """Make every blob written so far durable (fsync)."""
        ...

    def read(self, tier: str, location: Location, kind: int, sha256: bytes) -> bytes:
        """Read, authenticate, decompress and (for parts) hash-check one blob."""
        ...

    def read_chunk(self, tier: str, location: Location) -> Chunk:
        """The whole chunk at a location (checked), for repacking."""
        ...

    def read_record(self, tier: str, location: Location) -> tuple[RecordHeader, bytes]:
        """The record at a location as stored (header and sealed bytes), authenticated."""
        ...

    def close(self) -> None:
        """Sync and release every volume."""
        ...
