"""The node database of a PST/OST file ([MS-PST] 2.2): header, B-trees, blocks, subnodes.

A PST is a store of nodes (folders, messages, tables), each a chain of data blocks plus an
optional tree of subnodes. Two B-trees map ids to places: the node B-tree (NBT) maps a node id
to its data block id and subnode block id, the block B-tree (BBT) maps a block id to its file
offset and size. Lookups walk the B-tree pages on demand (a small page cache keeps the upper
levels), so a file of tens of gigabytes costs no more memory than a small one.

Three formats are read: ANSI (Outlook 97-2002, 32-bit ids), Unicode (Outlook 2003 and later,
64-bit ids, 512-byte pages) and the 4 KiB-page Unicode format of Outlook 2013 and later (OST
files, and PSTs written in it): 4 KiB B-tree pages with 2-byte entry counts, and data blocks
that may be zlib-compressed, the block B-tree giving their inflated size. Blocks written with
"compressible encryption" (NDB_CRYPT_PERMUTE) or "high encryption" (NDB_CRYPT_CYCLIC) are
decoded; only the layers above the blocks see plain bytes.
"""

from __future__ import annotations

import os
import struct
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"!BDN"
CRYPT_NONE, CRYPT_PERMUTE, CRYPT_CYCLIC = 0, 1, 2
# B-tree pages kept (512 bytes to 4 KiB each, a few MB at most): the upper levels of both trees
# and the leaves an item's blocks sit in, so a chunk of items reads each page once.
_PAGE_CACHE = 2048
_INTERNAL_BID = 0x2

# [MS-PST] 5.1: mpbbR, the table that encodes a byte with NDB_CRYPT_PERMUTE (decoding uses its
# inverse, mpbbI); also the first rotor of NDB_CRYPT_CYCLIC.
PERMUTE_ENCODE = bytes.fromhex(
    "41361362a8216ebbf416cc047f64e85d1ef2cb2a74c55e35d295479e962d9a884c7d843fdbac31b6485ff6c4"
    "d8398be7233b388ec8c1df25b120a546604e9cfbaad35651457c550007c92b9d859b09a08fadb30f63ab894b"
    "d7a7155a716642bf264a6b98faea7753b270052cfd593a867ece06eb827857c78d43afb41cd45bcde2e9274f"
    "c3087280cfb0eff5286dbe304d3492d50e3c2232e5e4f99fc2d10a8112e1ee918376e397e6618a1779a4b7dc"
    "907a5c8c02a6ca69de501a1193b9528758fced1d37491b6ae0293399bd6cd994f340546ff0c673b8d63e6518"
    "441fdd6710f10c19ecae03a1147ba90bfff8a3c0a201f72ebc2468750dfeba2fb5d0da3d")
_DECODE = bytes(PERMUTE_ENCODE.index(i) for i in range(256))
# [MS-PST] 5.1: mpbbS, the middle rotor of NDB_CRYPT_CYCLIC (its own inverse).
_ROTOR = bytes.fromhex(
    "14530f56b3c87a9ceb65481716159f02cc547c83000d0c0ba262a876dbd9edc7c5a4dcac8574d6d0a79bae9a"
    "967166c36399b8dd73928e847da55ed15d93b1575150808952944f4e0a6bbc8d7f6e47464140440111cb033f"
    "f7f4e1a98f3c3af9fbf0193082092ec99da08649ee6f4d6dc42d813425871b88aafc06a11238fd4c42726413"
    "37246a757743ffe6b44b365ce4d8353d45b92cecb7312b290768a30e697b189e2139be281a5b78f523ca2ab0"
    "af3efe048ce7e5983295d3f64ae8a6eae9f3d52f7020f21f0567ad5510cecde3273bdabad7c226d4911dd21c"
    "2233f8faf15aefcf90b68bb5bdc0bf08971e6ce261e0c6c159abbb58de5fdf60797eb28a")


class PstFormatError(Exception):
    """The bytes do not follow the PST format (corrupt, truncated, or not a PST)."""


@dataclass(frozen=True)
class Layout:
    """Sizes that differ between the ANSI, the Unicode and the 4 KiB-page format."""

    unicode: bool
    id_size: int
    page_size: int  # a B-tree page
    bt_entries: int  # bytes of B-tree entries in a page; cEnt etc. follow
    wide_counts: bool  # cEnt and cEntMax are 2 bytes (4 KiB pages), not 1
    bt_entry: int  # BTENTRY: key + BREF
    nbt_entry: int
    bbt_entry: int
    sl_header: int
    sl_entry: int
    si_entry: int
    inflated_at: int  # where a BBT entry gives the block's inflated size; 0: never compressed

    def ident(self, data: bytes, offset: int) -> int:
        """A block or node id (or file offset) at offset."""
        fmt = "<Q" if self.unicode else "<I"
        value: int = struct.unpack_from(fmt, data, offset)[0]
        return value


UNICODE = Layout(True, 8, 512, 488, False, 24, 32, 24, 8, 24, 16, 0)
UNICODE_4K = Layout(True, 8, 4096, 4056, True, 24, 32, 24, 8, 24, 16, 18)
ANSI = Layout(False, 4, 512, 496, False, 12, 16, 12, 4, 12, 8, 0)


@dataclass(frozen=True)
class BlockPlace:
    """Where a block lies: file offset, stored size, and size once inflated (the same when the
    block is not compressed)."""

    offset: int
    size: int
    inflated: int


@dataclass(frozen=True)
class _Page:
    """A B-tree page, its keys (and an inner page's child offsets) read once: pages are
    cached, and a lookup is then a bisect and a list index."""

    level: int
    entry_size: int
    keys: list[int]
    children: list[int]
    data: bytes


@dataclass(frozen=True)
class NodeEntry:
    """A node B-tree leaf: where a node's data and subnodes are."""

    nid: int
    bid_data: int
    bid_sub: int
    nid_parent: int


class PstFile:
    """An open PST or OST file; nodes are read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._read_header()
        except BaseException:
            self._handle.close()
            raise
        self._pages: dict[int, _Page] = {}

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> PstFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read_header(self) -> None:
        head = self._handle.read(564)
        if len(head) < 4 or head[:4] != MAGIC:
            raise PstFormatError("it is not a PST or OST file")
        if len(head) < 516:
            raise PstFormatError("the file is truncated: its header is incomplete")
        version = struct.unpack_from("<H", head, 10)[0]
        if version in (14, 15):
            self.layout = ANSI
            nbt, bbt, crypt = 188, 196, 461
        elif version in (21, 23, 36):
            # 21: Unicode as some recovery tools write it; 36: Outlook 2013's 4 KiB pages.
            self.layout = UNICODE_4K if version == 36 else UNICODE
            nbt, bbt, crypt = 224, 240, 513
        else:
            raise PstFormatError(f"its format version {version} is unknown")
        self.crypt = head[crypt]
        if self.crypt not in (CRYPT_NONE, CRYPT_PERMUTE, CRYPT_CYCLIC):
            raise PstFormatError(f"its encryption method {self.crypt} is unknown")
        self._nbt_root = self.layout.ident(head, nbt)
        self._bbt_root = self.layout.ident(head, bbt)
        self._file_size = self._handle.seek(0, 2)
        if max(self._nbt_root, self._bbt_root) + self.layout.page_size > self._file_size:
            raise PstFormatError("the file is truncated: its index lies past the end")

    # -- B-trees ---------------------------------------------------------------------------

    def _page(self, offset: int, leaf_entry: int) -> _Page:
        page = self._pages.get(offset)
        if page is not None:
            return page
        lay = self.layout
        data = self._read_at(offset, lay.page_size)
        if lay.wide_counts:
            count, _, size, level = struct.unpack_from("<HHBB", data, lay.bt_entries)
        else:
            count, _, size, level = data[lay.bt_entries:lay.bt_entries + 4]
        size = size or (leaf_entry if level == 0 else lay.bt_entry)
        if size < lay.id_size or count * size > lay.bt_entries:
            raise PstFormatError(f"the index page at {offset} is corrupt")
        ident = "<Q" if lay.unicode else "<I"
        keys = [struct.unpack_from(ident, data, i * size)[0] for i in range(count)]
        at = 2 * lay.id_size  # BTENTRY: key, then the child's BREF (block id, offset)
        children = [] if level == 0 else [struct.unpack_from(ident, data, i * size + at)[0]
                                          for i in range(count)]
        page = _Page(level, size, keys, children, data)
        if len(self._pages) >= _PAGE_CACHE:
            # The oldest page goes (an upper level read again now and then costs one read).
            del self._pages[next(iter(self._pages))]
        self._pages[offset] = page
        return page

    def _read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or offset + size > self._file_size:
            raise PstFormatError(f"a block at {offset} lies past the end of the file")
        data = os.pread(self._handle.fileno(), size, offset)
        if len(data) != size:
            raise PstFormatError(f"a block at {offset} could not be read whole")
        return data

    def _search(self, root: int, key: int, leaf_entry: int) -> bytes | None:
        """The leaf entry whose key is ``key`` in the B-tree at ``root``, or None."""
        offset = root
        for _ in range(16):  # B-trees here are a few levels deep; a loop means corruption
            page = self._page(offset, leaf_entry)
            # The last entry whose key is <= key: its subtree (or itself, in a leaf).
            index = bisect_right(page.keys, key) - 1
            if index < 0:
                return None
            if page.level == 0:
                if page.keys[index] != key:
                    return None
                start = index * page.entry_size
                return page.data[start:start + page.entry_size]
            offset = page.children[index]
        raise PstFormatError("the index B-tree is deeper than any real one (corrupt)")

    def node(self, nid: int) -> NodeEntry | None:
        """The node B-tree entry of a node id, or None when there is no such node."""
        entry = self._search(self._nbt_root, nid, self.layout.nbt_entry)
        if entry is None:
            return None
        lay = self.layout
        size = lay.id_size
        parent = struct.unpack_from("<I", entry, 3 * size)[0]
        return NodeEntry(nid, lay.ident(entry, size), lay.ident(entry, 2 * size), parent)

    def block_place(self, bid: int) -> BlockPlace:
        """Where a block lies in the file."""
        # The lowest bit of a block id is reserved and not part of the key.
        entry = self._search(self._bbt_root, bid & ~1, self.layout.bbt_entry)
        if entry is None:
            raise PstFormatError(f"block {bid:#x} is missing from the block index")
        lay = self.layout
        offset = lay.ident(entry, lay.id_size)
        size = struct.unpack_from("<H", entry, 2 * lay.id_size)[0]
        inflated = struct.unpack_from("<H", entry, lay.inflated_at)[0] if lay.inflated_at \
            else size
        return BlockPlace(offset, size, inflated)

    # -- blocks ----------------------------------------------------------------------------

    def block(self, bid: int) -> bytes:
        """One block's data, inflated and decoded (internal blocks are never encoded)."""
        place = self.block_place(bid)
        data = self._read_at(place.offset, place.size)
        if place.inflated > place.size:
            data = _inflate(data, place.inflated, bid)
        if bid & _INTERNAL_BID:
            return data
        if self.crypt == CRYPT_PERMUTE:
            return data.translate(_DECODE)
        if self.crypt == CRYPT_CYCLIC:
            return crypt_cyclic(data, bid)
        return data

    def data_blocks(self, bid: int) -> list[bytes]:
        """The data blocks of a node's data, in order (a data tree is flattened)."""
        if bid == 0:
            return []
        if not bid & _INTERNAL_BID:
            return [self.block(bid)]
        data = self.block(bid)
        if len(data) < 8 or data[0] != 0x01:
            raise PstFormatError(f"block {bid:#x} is not a data tree block")
        level, count = data[1], struct.unpack_from("<H", data, 2)[0]
        size = self.layout.id_size
        if 8 + count * size > len(data):
            raise PstFormatError(f"data tree block {bid:#x} is truncated")
        children = [self.layout.ident(data, 8 + i * size) for i in range(count)]
        if level == 1:
            return [self.block(child) for child in children]
        if level == 2:
            return [b for child in children for b in self.data_blocks(child)]
        raise PstFormatError(f"data tree block {bid:#x} has an unknown level {level}")

    def subnodes(self, bid: int) -> dict[int, tuple[int, int]]:
        """The subnode tree at ``bid``: node id -> (data block id, subnode block id)."""
        found: dict[int, tuple[int, int]] = {}
        if bid == 0:
            return found
        lay = self.layout
        data = self.block(bid)
        if len(data) < lay.sl_header or data[0] != 0x02:
            raise PstFormatError(f"block {bid:#x} is not a subnode block")
        level, count = data[1], struct.unpack_from("<H", data, 2)[0]
        start = lay.sl_header
        if level == 0:
            for i in range(count):
                at = start + i * lay.sl_entry
                if at + lay.sl_entry > len(data):
                    raise PstFormatError(f"subnode block {bid:#x} is truncated")
                nid = lay.ident(data, at) & 0xFFFFFFFF
                found[nid] = (lay.ident(data, at + lay.id_size),
                              lay.ident(data, at + 2 * lay.id_size))
            return found
        for i in range(count):
            at = start + i * lay.si_entry
            if at + lay.si_entry > len(data):
                raise PstFormatError(f"subnode block {bid:#x} is truncated")
            found.update(self.subnodes(lay.ident(data, at + lay.id_size)))
        return found


def _inflate(data: bytes, size: int, bid: int) -> bytes:
    """A compressed block's data (zlib, [RFC 1950]), never more than its stated size."""
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(data, size)
    except zlib.error as exc:
        raise PstFormatError(f"compressed block {bid:#x} cannot be inflated: {exc}") from exc
    if len(plain) != size or not inflater.eof:
        raise PstFormatError(f"compressed block {bid:#x} does not inflate to its stated size")
    return plain


def _shifted(table: bytes, by: int) -> bytes:
    """The table read ``by`` places on: entry b is table[(b + by) % 256]."""
    return table[by:] + table[:by]


_IDENTITY = bytes(range(256))
# NDB_CRYPT_CYCLIC byte by byte is I[S[R[b + k] + h] - h] - k for the key's low byte k and high
# byte h (mod 256). As tables per k and per h, a block is three passes of bytes.translate: the
# bytes sharing a k are every 256th, those sharing an h a run of at most 256.
_CYCLIC_IN = tuple(_shifted(PERMUTE_ENCODE, k) for k in range(256))
_CYCLIC_MID = tuple(_shifted(_ROTOR, h).translate(_shifted(_IDENTITY, -h % 256))
                    for h in range(256))
_CYCLIC_OUT = tuple(_DECODE.translate(_shifted(_IDENTITY, -k % 256)) for k in range(256))


# Whole rotor chains per h: byte b at low byte k becomes _CYCLIC_ROTORS[h][b + k] - k.
_CYCLIC_ROTORS = tuple(PERMUTE_ENCODE.translate(mid).translate(_DECODE) for mid in _CYCLIC_MID)
_CYCLIC_SHORT = 768  # below this, byte by byte is faster than 512 strided passes


def crypt_cyclic(data: bytes, bid: int) -> bytes:
    """A block decoded with NDB_CRYPT_CYCLIC ([MS-PST] 5.2), keyed by its block id: a 16-bit
    counter stepping once a byte. The cipher is its own inverse, so this also encodes."""
    key = bid & 0xFFFFFFFF
    counter = (key ^ (key >> 16)) & 0xFFFF
    low, high = counter & 0xFF, counter >> 8
    out = bytearray(data)
    if len(out) < _CYCLIC_SHORT:
        for at, byte in enumerate(data):
            k = (low + at) & 0xFF
            out[at] = (_CYCLIC_ROTORS[(high + ((low + at) >> 8)) & 0xFF][(byte + k) & 0xFF]
                       - k) & 0xFF
        return bytes(out)
    for at in range(256):
        out[at::256] = out[at::256].translate(_CYCLIC_IN[(low + at) & 0xFF])
    start, run = 0, 256 - low
    while start < len(out):
        out[start:start + run] = out[start:start + run].translate(_CYCLIC_MID[high])
        start, run, high = start + run, 256, (high + 1) & 0xFF
    for at in range(256):
        out[at::256] = out[at::256].translate(_CYCLIC_OUT[(low + at) & 0xFF])
    return bytes(out)


@dataclass
class Node:
    """A node's data blocks and its subnodes, the unit the higher layers read."""

    pst: PstFile
    nid: int
    bid_data: int
    bid_sub: int
    _subnodes: dict[int, tuple[int, int]] | None = None

    def blocks(self) -> list[bytes]:
        """The node's data blocks, decoded."""
        return self.pst.data_blocks(self.bid_data)

    def data(self) -> bytes:
        """The node's data, all blocks joined."""
        return b"".join(self.blocks())

    def subnode(self, nid: int) -> Node | None:
        """A subnode of this node by id, or None."""
        if self._subnodes is None:
            self._subnodes = self.pst.subnodes(self.bid_sub)
        found = self._subnodes.get(nid)
        if found is None:
            return None
        return Node(self.pst, nid, found[0], found[1])


def open_node(pst: PstFile, nid: int) -> Node | None:
    """A top-level node by id, or None when the node B-tree has no such node."""
    entry = pst.node(nid)
    if entry is None:
        return None
    return Node(pst, nid, entry.bid_data, entry.bid_sub)
