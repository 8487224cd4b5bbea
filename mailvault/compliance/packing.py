"""How each tier packs the blobs written to it: the one place that knows Active from Open
from Deep when bytes are written.

Active: each blob compressed alone at the fast ingest level. Open: each blob alone at a high
level with a zstd dictionary trained on the vault's own mail (random access stays one read).
Deep: blobs gathered into solid chunks compressed together at a high level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from mailvault.store import chunks, dictionaries
from mailvault.store.volumes import Location

if TYPE_CHECKING:
    from mailvault.vault import Vault

WARMTH = {"active": 0, "open": 1, "deep": 2}


@dataclass(frozen=True)
class Written:
    """Where one blob went, and its share of the bytes stored."""

    location: Location
    stored_bytes: int


def warmest(tiers: Iterable[str]) -> str:
    """The tier read most readily of these (Active before Open before Deep)."""
    return min(tiers, key=lambda tier: WARMTH[tier])


class Packer:
    """Writes blobs to one tier in that tier's packing; call ``flush`` before ``sync``."""

    def __init__(self, vault: Vault, tier: str, samples: Iterable[bytes] = ()) -> None:
        self.vault = vault
        self.tier = tier
        settings = vault.settings.tiers
        self._pending: list[tuple[chunks.Member, list[Written]]] = []
        self._pending_bytes = 0
        self._chunk_bytes = max(1, settings.deep_chunk_mb) * 1024 * 1024
        self._compressor: zstandard.ZstdCompressor | None = None
        if tier == "open":
            self._compressor = self._open_compressor(list(samples))
        elif tier == "active":
            self._compressor = zstandard.ZstdCompressor(
                level=vault.settings.store.compression_level)

    def _open_compressor(self, samples: list[bytes]) -> zstandard.ZstdCompressor:
        settings = self.vault.settings.tiers
        if settings.open_dictionary_kb <= 0:
            return zstandard.ZstdCompressor(level=settings.open_level)
        dict_id = dictionaries.newest(self.vault.engine, "open")
        if dict_id is not None:
            data: bytes | None = dictionaries.load(self.vault.engine, self.vault.keyring,
                                                   dict_id)
        else:
            data = dictionaries.train(samples, settings.open_dictionary_kb * 1024)
            if data is not None:
                dictionaries.save(self.vault.engine, self.vault.keyring, "open", data)
        if data is None:
            return zstandard.ZstdCompressor(level=settings.open_level)
        return zstandard.ZstdCompressor(level=settings.open_level,
                                        dict_data=zstandard.ZstdCompressionDict(data))

    def add(self, kind: int, sha256: bytes, data: bytes) -> list[Written]:
        """Write one blob; the returned list is filled in now, or at the chunk's flush."""
        if self._compressor is not None:
            location = self.vault.blobs.write(self.tier, kind, sha256,
                                              self._compressor.compress(data), len(data))
            return [Written(location, location.length)]
        slot: list[Written] = []
        self._pending.append((chunks.Member(kind, sha256, data), slot))
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._chunk_bytes:
            self.flush()
        return slot

    def flush(self) -> None:
        """Write the chunk being gathered (Deep), so that every slot knows its location."""
        if not self._pending:
            return
        plain = chunks.pack(member for member, _ in self._pending)
        level = self.vault.settings.tiers.deep_level
        params = zstandard.ZstdCompressionParameters.from_level(
            level, source_size=len(plain), enable_ldm=True)
        compressed = zstandard.ZstdCompressor(compression_params=params).compress(plain)
        location = self.vault.blobs.write_chunk(self.tier, plain, compressed)
        for member, slot in self._pending:
            share = round(location.length * len(member.data) / max(len(plain), 1))
            slot.append(Written(location, share))
        self._pending = []
        self._pending_bytes = 0

