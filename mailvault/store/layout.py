"""A message as stored: a skeleton plus large leaf parts cut out as content-addressed blobs.

The same attachment sent to fifty people is stored once. Cutting works on the raw bytes
(``multipart.py``'s delimiter scanner, not a parser that re-serialises), so joining the skeleton and
the parts gives back exactly the bytes received, which the reader checks against the hash.

Skeleton format: ``MVSK`` + version byte + part count (u32), then per part its position in
the residual bytes (u64), its length (u64) and its SHA-256, then the residual bytes.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from mailvault.multipart import split_multipart

_MAGIC = b"MVSK\x01"
_ENTRY = struct.Struct(">QQ32s")
_COUNT = struct.Struct(">I")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_TYPE = re.compile(rb"^content-type:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.I | re.M)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))', re.I)
MAX_DEPTH = 20


@dataclass(frozen=True)
class Part:
    """A leaf body cut out of a message: its hash and bytes."""

    sha256: bytes
    data: bytes


@dataclass(frozen=True)
class Layout:
    """How one message is stored: a skeleton, and the parts it refers to."""

    skeleton: bytes
    parts: list[Part]


def split(raw: bytes, min_part: int) -> Layout:
    """Cut every leaf body of at least ``min_part`` bytes out of ``raw``."""
    ranges: list[tuple[int, int]] = []
    if len(raw) >= min_part:
        _leaf_ranges(raw, 0, len(raw), min_part, ranges, 0)
    if not ranges:
        return Layout(skeleton=_MAGIC + _COUNT.pack(0) + raw, parts=[])
    entries = []
    residual = bytearray()
    parts = []
    pos = 0
    for start, end in ranges:
        residual += raw[pos:start]
        data = raw[start:end]
        digest = hashlib.sha256(data).digest()
        entries.append(_ENTRY.pack(len(residual), len(data), digest))
        parts.append(Part(digest, data))
        pos = end
    residual += raw[pos:]
    skeleton = _MAGIC + _COUNT.pack(len(entries)) + b"".join(entries) + bytes(residual)
    return Layout(skeleton=skeleton, parts=parts)


def part_hashes(skeleton: bytes) -> list[bytes]:
    """The SHA-256 of every part a skeleton refers to, in order."""
    return [digest for _, _, digest in _entries(skeleton)[0]]


def join(skeleton: bytes, get_part: Callable[[bytes], bytes]) -> bytes:
    """Rebuild the raw message from its skeleton, fetching parts by hash."""
    entries, body_at = _entries(skeleton)
    residual = memoryview(skeleton)[body_at:]
    out = bytearray()
    pos = 0
    for at, length, digest in entries:
        out += residual[pos:at]
        data = get_part(digest)
        if len(data) != length:
            raise ValueError("a part's length does not match its skeleton entry")
        out += data
        pos = at
    out += residual[pos:]
    return bytes(out)


def _entries(skeleton: bytes) -> tuple[list[tuple[int, int, bytes]], int]:
    if not skeleton.startswith(_MAGIC):
        raise ValueError("not a message skeleton")
    (count,) = _COUNT.unpack_from(skeleton, len(_MAGIC))
    at = len(_MAGIC) + _COUNT.size
    entries = []
    for _ in range(count):
        entries.append(_ENTRY.unpack_from(skeleton, at))
        at += _ENTRY.size
    return entries, at


def _leaf_ranges(
    raw: bytes, start: int, end: int, min_part: int, out: list[tuple[int, int]], depth: int
) -> None:
    """Append the (start, end) of every large leaf body between start and end."""
    match = _HEADER_END.search(raw, start, end)
    if match is None:
        return
    headers = raw[start : match.start()]
    body_start = match.end()
    if end - body_start < min_part or depth > MAX_DEPTH:
        return
    ctype_match = _CONTENT_TYPE.search(headers)
    ctype = ctype_match.group(1) if ctype_match else b""
    lowered = ctype.lower()
    if lowered.lstrip().startswith(b"multipart/"):
        boundary = _BOUNDARY.search(ctype)
        if boundary:
            token = boundary.group(1) or boundary.group(2)
            # Without a close delimiter the trailing text stays in the skeleton.
            for sub_start, sub_end in split_multipart(raw, body_start, end, token).parts:
                if sub_end > sub_start:
                    _leaf_ranges(raw, sub_start, sub_end, min_part, out, depth + 1)
        return
    if lowered.lstrip().startswith(b"message/"):
        _leaf_ranges(raw, body_start, end, min_part, out, depth + 1)
        return
    if depth == 0:
        return  # a single-part message: the whole body is the message; nothing to share
    out.append((body_start, end))
