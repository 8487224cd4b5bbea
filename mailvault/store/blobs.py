"""Blobs: zstd-compressed, AES-256-GCM-sealed records in volume files, checked on every read.

Compression runs where the CPU is (the pipeline's worker processes call ``compress``); this
module seals, appends and reads. Two kinds of blob exist: a message skeleton (keyed by the
message's SHA-256, checked after the parts are joined back) and a part (keyed by its own
SHA-256, checked here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import zstandard

from mailvault.errors import IntegrityError, StoreError
from mailvault.store.crypto import NONCE_BYTES, TAG_BYTES, Keyring
from mailvault.store.volumes import RECORD_HEADER, Location, RecordHeader, Volumes

KIND_MESSAGE = 1
KIND_PART = 2


def compress(data: bytes, level: int) -> bytes:
    """zstd-compress one blob (a frame that records its own size)."""
    return zstandard.ZstdCompressor(level=level).compress(data)


class BlobStore:
    """Seals and appends blobs to the volumes of each tier, and reads them back verified."""

    def __init__(self, keyring: Keyring, volumes: Callable[[str], Volumes]) -> None:
        self._keyring = keyring
        self._volumes_for = volumes
        self._open: dict[str, Volumes] = {}
        self._decompressor = zstandard.ZstdDecompressor()

    def volumes(self, tier: str) -> Volumes:
        """The volume set of a tier (opened on first use)."""
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
        for volumes in self._open.values():
            volumes.sync()

    def read(self, tier: str, location: Location, kind: int, sha256: bytes) -> bytes:
        """Read, authenticate, decompress and (for parts) hash-check one blob."""
        record = self.volumes(tier).read(location)
        header = RecordHeader.unpack(record[: RECORD_HEADER.size])
        if header.kind != kind or header.sha256 != sha256:
            raise IntegrityError(
                f"volume {location.volume} at offset {location.offset} holds another blob "
                "than the catalog says."
            )
        compressed = self._keyring.open(header.key_id, record[RECORD_HEADER.size :],
                                        header.aad())
        try:
            plain = self._decompressor.decompress(compressed,
                                                  max_output_size=header.plain_length)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"a blob in volume {location.volume} does not decompress: "
                                 f"{exc}.") from exc
        if len(plain) != header.plain_length:
            raise IntegrityError(f"a blob in volume {location.volume} has the wrong length.")
        if kind == KIND_PART and hashlib.sha256(plain).digest() != sha256:
            raise IntegrityError(f"a part in volume {location.volume} does not match its hash.")
        return plain

    def close(self) -> None:
        """Sync and release every volume."""
        try:
            self.sync()
        except StoreError:
            pass
        for volumes in self._open.values():
            volumes.close()
        self._open.clear()


def volume_path(folder: Path, volume_id: int) -> Path:
    """The file of a volume inside its tier folder."""
    return folder / f"{volume_id:08d}.vol"
