"""Blobs: zstd-compressed, AES-256-GCM-sealed records in volume files, checked on every read.

Compression runs where the CPU is (the pipeline's worker processes call ``compress``); this
module seals, appends and reads. Two kinds of blob exist: a message skeleton (keyed by the
message's SHA-256, checked after the parts are joined back) and a part (keyed by its own
SHA-256, checked here).

Tiers pack the same blobs differently, and a record says which packing it uses, so reading
never depends on which tier the catalog names: a plain frame (Active), a frame made with a
trained dictionary whose id zstd writes into the frame (Open), or a solid chunk of many blobs
(Deep, see chunks.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import zstandard

from mailvault.errors import IntegrityError, StoreError
from mailvault.store.chunks import Chunk, ChunkCache, check
from mailvault.store.crypto import NONCE_BYTES, TAG_BYTES, Keyring
from mailvault.store.volumes import RECORD_HEADER, Location, RecordHeader, Volumes

KIND_MESSAGE = 1
KIND_PART = 2
KIND_CHUNK = 3


def compress(data: bytes, level: int, dictionary: bytes | None = None) -> bytes:
    """zstd-compress one blob (a frame that records its own size, and the id of the
    dictionary when one is used, so that a reader finds it)."""
    return _compressor(level, dictionary).compress(data)


@lru_cache(maxsize=8)
def _compressor(level: int, dictionary: bytes | None) -> zstandard.ZstdCompressor:
    # Digesting a dictionary costs milliseconds; a process keeps the few it uses.
    if dictionary is None:
        return zstandard.ZstdCompressor(level=level)
    return zstandard.ZstdCompressor(level=level,
                                    dict_data=zstandard.ZstdCompressionDict(dictionary))


class VolumeBlobStore:
    """Seals and appends blobs to the volume files of each tier, and reads them back verified
    (the local implementation of ``blob_store.BlobStore``)."""

    def __init__(self, keyring: Keyring, volumes: Callable[[str], Volumes],
                 dictionary: Callable[[int], bytes] | None = None,
                 cached_chunks: int = 8) -> None:
        self._keyring = keyring
        self._volumes_for = volumes
        self._dictionary = dictionary
        self._open: dict[str, Volumes] = {}
        self._open_lock = threading.Lock()
        self._decompressor = zstandard.ZstdDecompressor()
        self._dict_decompressors: dict[int, zstandard.ZstdDecompressor] = {}
        self.chunks = ChunkCache(cached_chunks)

    def volumes(self, tier: str) -> Volumes:
        """The volume set of a tier (opened on first use)."""
        with self._open_lock:
            if tier not in self._open:
                self._open[tier] = self._volumes_for(tier)
            return self._open[tier]

    def write(self, tier: str, kind: int, sha256: bytes, compressed: bytes,
              plain_length: int) -> Location:
        """Seal and append one compressed blob; durable only after sync()."""
        key_id = self._keyring.current
        payload_length = NONCE_BYTES + len(compressed) + TAG_BYTES
        header = RecordHeader(kind, key_id, sha256, plain_length, payload_length)
        _, sealed = self._keyring.seal(compressed, header.aad())
        return self.volumes(tier).append(header.pack() + sealed)

    def sync(self) -> None:
        """fsync every volume written since the last sync."""
        for volumes in list(self._open.values()):
            volumes.sync()

    def write_chunk(self, tier: str, plain: bytes, compressed: bytes) -> Location:
        """Seal and append one solid chunk (see chunks.py); durable only after sync()."""
        return self.write(tier, KIND_CHUNK, hashlib.sha256(plain).digest(), compressed,
                          len(plain))

    def read(self, tier: str, location: Location, kind: int, sha256: bytes) -> bytes:
        """Read, authenticate, decompress and (for parts) hash-check one blob."""
        chunk = self.chunks.get((location.volume, location.offset))
        if chunk is None:
            header, plain = self._open_record(tier, location)
            if header.kind == KIND_CHUNK:
                chunk = check(plain, header.sha256)
                self.chunks.put((location.volume, location.offset), chunk)
            elif header.kind != kind or header.sha256 != sha256:
                raise IntegrityError(
                    f"volume {location.volume} at offset {location.offset} holds another blob "
                    "than the catalog says."
                )
        if chunk is not None:
            member = chunk.get(kind, sha256)
            if member is None:
                raise IntegrityError(f"the chunk in volume {location.volume} at offset "
                                     f"{location.offset} does not hold the blob the catalog "
                                     "says.")
            plain = member
        if kind == KIND_PART and hashlib.sha256(plain).digest() != sha256:
            raise IntegrityError(f"a part in volume {location.volume} does not match its hash.")
        return plain

    def read_chunk(self, tier: str, location: Location) -> Chunk:
        """The whole chunk at a location (checked), for repacking."""
        header, plain = self._open_record(tier, location)
        if header.kind != KIND_CHUNK:
            raise IntegrityError(f"volume {location.volume} at offset {location.offset} "
                                 "holds no chunk.")
        return check(plain, header.sha256)

    def read_record(self, tier: str, location: Location) -> tuple[RecordHeader, bytes]:
        """The record at a location as stored (header and sealed bytes), authenticated."""
        record = self.volumes(tier).read(location)
        header = RecordHeader.unpack(record[: RECORD_HEADER.size])
        self._keyring.open(header.key_id, record[RECORD_HEADER.size :], header.aad())
        return header, record

    def _open_record(self, tier: str, location: Location) -> tuple[RecordHeader, bytes]:
        """Authenticate and decompress the record at a location."""
        record = self.volumes(tier).read(location)
        header = RecordHeader.unpack(record[: RECORD_HEADER.size])
        compressed = self._keyring.open(header.key_id, record[RECORD_HEADER.size :],
                                        header.aad())
        try:
            dict_id = zstandard.get_frame_parameters(compressed).dict_id
            plain = self._decompressor_for(dict_id).decompress(
                compressed, max_output_size=header.plain_length)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"a blob in volume {location.volume} does not decompress: "
                                 f"{exc}.") from exc
        if len(plain) != header.plain_length:
            raise IntegrityError(f"a blob in volume {location.volume} has the wrong length.")
        return header, plain

    def _decompressor_for(self, dict_id: int) -> zstandard.ZstdDecompressor:
        if not dict_id:
            return self._decompressor
        if dict_id not in self._dict_decompressors:
            if self._dictionary is None:
                raise IntegrityError(f"a blob needs zstd dictionary {dict_id}, which this "
                                     "store has no access to.")
            data = zstandard.ZstdCompressionDict(self._dictionary(dict_id))
            self._dict_decompressors[dict_id] = zstandard.ZstdDecompressor(dict_data=data)
        return self._dict_decompressors[dict_id]

    def close(self) -> None:
        """Sync and release every volume."""
        with contextlib.suppress(StoreError):
            self.sync()
        for volumes in self._open.values():
            volumes.close()
        self._open.clear()


def volume_path(folder: Path, volume_id: int) -> Path:
    """The file of a volume inside its tier folder."""
    return folder / f"{volume_id:08d}.vol"
