"""Deep-tier solid chunks: many blobs compressed together, so that they share one zstd window.

A message compressed alone cannot reuse what its neighbours already said (the same headers,
signatures, quoted replies); a chunk of a few megabytes can. The price is that reading one
message decompresses its whole chunk, so readers keep a few decompressed chunks in memory.

Plain chunk format: ``MVCH`` + version byte + entry count (u32), then per entry the blob kind
(u8), its SHA-256, its offset in the data area (u64) and its length (u64), then the data area.
The chunk is one sealed record whose header carries the SHA-256 of this plain text, so a chunk
is checked as a whole on every load and each member again by its own hash where it is read.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from mailvault.errors import IntegrityError

_MAGIC = b"MVCH\x01"
_COUNT = struct.Struct(">I")
_ENTRY = struct.Struct(">B32sQQ")


@dataclass(frozen=True)
class Member:
    """One blob inside a chunk: its kind, hash and bytes."""

    kind: int
    sha256: bytes
    data: bytes


def pack(members: Iterable[Member]) -> bytes:
    """The plain bytes of a chunk holding these members (a repeated member is kept once)."""
    entries = []
    data = bytearray()
    seen: set[tuple[int, bytes]] = set()
    for member in members:
        if (member.kind, member.sha256) in seen:
            continue
        seen.add((member.kind, member.sha256))
        entries.append(_ENTRY.pack(member.kind, member.sha256, len(data), len(member.data)))
        data += member.data
    return _MAGIC + _COUNT.pack(len(entries)) + b"".join(entries) + bytes(data)


class Chunk:
    """A decompressed chunk: look members up by (kind, hash)."""

    def __init__(self, plain: bytes) -> None:
        if not plain.startswith(_MAGIC):
            raise IntegrityError("a Deep chunk does not start with the chunk marker.")
        (count,) = _COUNT.unpack_from(plain, len(_MAGIC))
        at = len(_MAGIC) + _COUNT.size
        data_at = at + count * _ENTRY.size
        if data_at > len(plain):
            raise IntegrityError("a Deep chunk's member table is cut short.")
        self._plain = memoryview(plain)
        self._members: dict[tuple[int, bytes], tuple[int, int]] = {}
        for _ in range(count):
            kind, sha, offset, length = _ENTRY.unpack_from(plain, at)
            at += _ENTRY.size
            if data_at + offset + length > len(plain):
                raise IntegrityError("a Deep chunk member runs past the chunk's end.")
            self._members[(kind, sha)] = (data_at + offset, length)
        self.size = len(plain)

    def get(self, kind: int, sha256: bytes) -> bytes | None:
        """A member's bytes, or None when the chunk does not hold it."""
        where = self._members.get((kind, sha256))
        if where is None:
            return None
        return bytes(self._plain[where[0] : where[0] + where[1]])

    def members(self) -> list[Member]:
        """Every member, in chunk order."""
        return [Member(kind, sha, bytes(self._plain[at : at + length]))
                for (kind, sha), (at, length) in sorted(self._members.items(),
                                                        key=lambda item: item[1][0])]


def check(plain: bytes, sha256: bytes) -> Chunk:
    """Parse a chunk after checking it against the hash its record header carries."""
    if hashlib.sha256(plain).digest() != sha256:
        raise IntegrityError("a Deep chunk does not match its hash.")
    return Chunk(plain)


class ChunkCache:
    """The most recently read chunks, decompressed (least recently used leaves first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._chunks: OrderedDict[tuple[int, int], Chunk] = OrderedDict()

    def get(self, key: tuple[int, int]) -> Chunk | None:
        chunk = self._chunks.get(key)
        if chunk is not None:
            self._chunks.move_to_end(key)
        return chunk

    def put(self, key: tuple[int, int], chunk: Chunk) -> None:
        self._chunks[key] = chunk
        self._chunks.move_to_end(key)
        while len(self._chunks) > self.capacity:
            self._chunks.popitem(last=False)

    def forget(self, volume: int) -> None:
        """Drop every cached chunk of a volume (it was compacted away)."""
        for key in [k for k in self._chunks if k[0] == volume]:
            del self._chunks[key]
