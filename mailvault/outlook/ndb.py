"""The node database of a PST/OST file ([MS-PST] 2.2): header, B-trees, blocks, subnodes.

A PST is a store of nodes (folders, messages, tables), each a chain of data blocks plus an
optional tree of subnodes. Two B-trees map ids to places: the node B-tree (NBT) maps a node id
to its data block id and subnode block id, the block B-tree (BBT) maps a block id to its file
offset and size. Lookups walk the B-tree pages on demand (a small page cache keeps the upper
levels), so a file of tens of gigabytes costs no more memory than a small one.

Both formats are read: ANSI (Outlook 97-2002, 32-bit ids) and Unicode (Outlook 2003 and later,
64-bit ids). Blocks written with "compressible encryption" (NDB_CRYPT_PERMUTE) are decoded;
"high encryption" (NDB_CRYPT_CYCLIC) and the 4 KiB-page format of Outlook 2013 OST files are
refused with a clear error.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"!BDN"
PAGE_SIZE = 512
_CRYPT_NONE, _CRYPT_PERMUTE, _CRYPT_CYCLIC = 0, 1, 2
_PAGE_CACHE = 256
_INTERNAL_BID = 0x2

# [MS-PST] 5.1: mpbbR, the table that encodes a byte with NDB_CRYPT_PERMUTE; decoding uses
# its inverse.
_ENCODE = bytes.fromhex(
    "41361362a8216ebbf416cc047f64e85d1ef2cb2a74c55e35d295479e962d9a884c7d843fdbac31b6485ff6c4"
    "d8398be7233b388ec8c1df25b120a546604e9cfbaad35651457c550007c92b9d859b09a08fadb30f63ab894b"
    "d7a7155a716642bf264a6b98faea7753b270052cfd593a867ece06eb827857c78d43afb41cd45bcde2e9274f"
    "c3087280cfb0eff5286dbe304d3492d50e3c2232e5e4f99fc2d10a8112e1ee918376e397e6618a1779a4b7dc"
    "907a5c8c02a6ca69de501a1193b9528758fced1d37491b6ae0293399bd6cd994f340546ff0c673b8d63e6518"
    "441fdd6710f10c19ecae03a1147ba90bfff8a3c0a201f72ebc2468750dfeba2fb5d0da3d")
_DECODE = bytes(_ENCODE.index(i) for i in range(256))


class PstFormatError(Exception):
    """The bytes do not follow the PST format (corrupt, truncated, or not a PST)."""


@dataclass(frozen=True)
class Layout:
    """Sizes that differ between the ANSI and the Unicode format."""

    unicode: bool
    id_size: int
    bt_entries: int  # bytes of B-tree entries in a page; cEnt etc. follow
    bt_entry: int  # BTENTRY: key + BREF
    nbt_entry: int
    bbt_entry: int
    sl_header: int
    sl_entry: int
    si_entry: int

    def ident(self, data: bytes, offset: int) -> int:
        """A block or node id (or file offset) at offset."""
        fmt = "<Q" if self.unicode else "<I"
        value: int = struct.unpack_from(fmt, data, offset)[0]
        return value


UNICODE = Layout(True, 8, 488, 24, 32, 24, 8, 24, 16)
ANSI = Layout(False, 4, 496, 12, 16, 12, 4, 12, 8)


@dataclass(frozen=True)
class _Page:
    """A B-tree page, its keys read once (pages are cached)."""

    level: int
    entry_size: int
    keys: list[int]
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
        self._pages: OrderedDict[int, _Page] = OrderedDict()

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
        elif version == 23:
            self.layout = UNICODE
            nbt, bbt, crypt = 224, 240, 513
        elif version == 36:
            raise PstFormatError("it uses the 4 KiB-page format of Outlook 2013 OST files, "
                                 "which this reader does not read")
        else:
            raise PstFormatError(f"its format version {version} is unknown")
        self.crypt = head[crypt]
        if self.crypt == _CRYPT_CYCLIC:
            raise PstFormatError("it uses Outlook's high encryption, which this reader does "
                                 "not decode")
        if self.crypt not in (_CRYPT_NONE, _CRYPT_PERMUTE):
            raise PstFormatError(f"its encryption method {self.crypt} is unknown")
        self._nbt_root = self.layout.ident(head, nbt)
        self._bbt_root = self.layout.ident(head, bbt)
        self._file_size = self._handle.seek(0, 2)
        if max(self._nbt_root, self._bbt_root) + PAGE_SIZE > self._file_size:
            raise PstFormatError("the file is truncated: its index lies past the end")

    # -- B-trees ---------------------------------------------------------------------------

    def _page(self, offset: int, leaf_entry: int) -> _Page:
        page = self._pages.get(offset)
        if page is not None:
            self._pages.move_to_end(offset)
            return page
        data = self._read_at(offset, PAGE_SIZE)
        lay = self.layout
        count, _, size, level = data[lay.bt_entries:lay.bt_entries + 4]
        size = size or (leaf_entry if level == 0 else lay.bt_entry)
        if size < lay.id_size or count * size > lay.bt_entries:
            raise PstFormatError(f"the index page at {offset} is corrupt")
        keys = [lay.ident(data, i * size) for i in range(count)]
        page = _Page(level, size, keys, data)
        self._pages[offset] = page
        if len(self._pages) > _PAGE_CACHE:
            self._pages.popitem(last=False)
        return page

    def _read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or offset + size > self._file_size:
            raise PstFormatError(f"a block at {offset} lies past the end of the file")
        self._handle.seek(offset)
        data = self._handle.read(size)
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
            start = index * page.entry_size
            if page.level == 0:
                if page.keys[index] != key:
                    return None
                return page.data[start:start + page.entry_size]
            offset = self.layout.ident(page.data, start + 2 * self.layout.id_size)
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

    def block_place(self, bid: int) -> tuple[int, int]:
        """(file offset, size) of a block."""
        # The lowest bit of a block id is reserved and not part of the key.
        entry = self._search(self._bbt_root, bid & ~1, self.layout.bbt_entry)
        if entry is None:
            raise PstFormatError(f"block {bid:#x} is missing from the block index")
        lay = self.layout
        offset = lay.ident(entry, lay.id_size)
        size = struct.unpack_from("<H", entry, 2 * lay.id_size)[0]
        return offset, size

    # -- blocks ----------------------------------------------------------------------------

    def block(self, bid: int) -> bytes:
        """One block's data, decoded (internal blocks are never encoded)."""
        offset, size = self.block_place(bid)
        data = self._read_at(offset, size)
        if self.crypt == _CRYPT_PERMUTE and not bid & _INTERNAL_BID:
            data = data.translate(_DECODE)
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
