"""The lists, tables and properties layer of a PST ([MS-PST] 2.3) over the node database.

Every folder, message, attachment and recipient is stored as a heap-on-node (HN): a small
allocator inside a node's data blocks. On a heap sits either a property context (PC: a B-tree
of property tag -> value, one item's properties) or a table context (TC: rows and columns, e.g.
a folder's contents or a message's recipients). Values too large for the heap live in the
node's subnodes. This module turns both into PropertyBags.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from mailvault.outlook.ndb import Node, PstFormatError
from mailvault.outlook.properties import (
    PT_BINARY,
    PT_BOOLEAN,
    PT_ERROR,
    PT_FLOAT,
    PT_LONG,
    PT_SHORT,
    PropertyBag,
)

_HN_SIGNATURE = 0xEC
_BTH_TYPE = 0xB5
PC_SIGNATURE = 0xBC
TC_SIGNATURE = 0x7C
_INLINE_TYPES = {PT_SHORT: 2, PT_LONG: 4, PT_FLOAT: 4, PT_ERROR: 4, PT_BOOLEAN: 1}
_FIXED_8 = {0x5, 0x6, 0x7, 0x14, 0x40}  # double, currency, apptime, int64, systime


class Heap:
    """A heap-on-node: allocations addressed by heap ids (HIDs)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.blocks = node.blocks()
        if not self.blocks or len(self.blocks[0]) < 12 or self.blocks[0][2] != _HN_SIGNATURE:
            raise PstFormatError(f"node {node.nid:#x} holds no heap")
        self.signature = self.blocks[0][3]
        self.user_root = struct.unpack_from("<I", self.blocks[0], 4)[0]
        self._maps: dict[int, list[int]] = {}

    def _offsets(self, index: int) -> list[int]:
        offsets = self._maps.get(index)
        if offsets is None:
            block = self.blocks[index]
            map_at = struct.unpack_from("<H", block, 0)[0]
            if map_at + 4 > len(block):
                raise PstFormatError(f"heap block {index} of node {self.node.nid:#x} is corrupt")
            count = struct.unpack_from("<H", block, map_at)[0]
            offsets = list(struct.unpack_from(f"<{count + 1}H", block, map_at + 4))
            self._maps[index] = offsets
        return offsets

    def get(self, hid: int) -> bytes:
        """The bytes of one allocation (an empty value for HID 0)."""
        if hid == 0:
            return b""
        index, block_index = (hid >> 5) & 0x7FF, hid >> 16
        if hid & 0x1F or block_index >= len(self.blocks):
            raise PstFormatError(f"heap id {hid:#x} of node {self.node.nid:#x} is invalid")
        offsets = self._offsets(block_index)
        if not 1 <= index < len(offsets):
            raise PstFormatError(f"heap id {hid:#x} of node {self.node.nid:#x} is out of range")
        return self.blocks[block_index][offsets[index - 1]:offsets[index]]

    def value(self, hnid: int) -> bytes:
        """A value addressed by HNID: a heap allocation or, for large ones, a subnode."""
        if hnid & 0x1F == 0:
            return self.get(hnid)
        sub = self.node.subnode(hnid)
        if sub is None:
            raise PstFormatError(f"subnode {hnid:#x} of node {self.node.nid:#x} is missing")
        return sub.data()

    def btree(self, hid: int) -> Iterator[tuple[bytes, bytes]]:
        """(key, data) for every record of the B-tree-on-heap whose header is at ``hid``."""
        header = self.get(hid)
        if len(header) < 8 or header[0] != _BTH_TYPE:
            raise PstFormatError(f"node {self.node.nid:#x} holds no B-tree at {hid:#x}")
        key_size, data_size, levels = header[1], header[2], header[3]
        root = struct.unpack_from("<I", header, 4)[0]
        if root:
            yield from self._records(root, levels, key_size, data_size)

    def _records(self, hid: int, level: int, key_size: int, data_size: int) -> Iterator[
            tuple[bytes, bytes]]:
        data = self.get(hid)
        size = key_size + (data_size if level == 0 else 4)
        for start in range(0, len(data) - size + 1, size):
            if level == 0:
                yield data[start:start + key_size], data[start + key_size:start + size]
            else:
                child = struct.unpack_from("<I", data, start + key_size)[0]
                yield from self._records(child, level - 1, key_size, data_size)


def property_context(node: Node) -> PropertyBag:
    """The properties of a node that holds a property context (folder, message, attachment)."""
    heap = Heap(node)
    if heap.signature != PC_SIGNATURE:
        raise PstFormatError(f"node {node.nid:#x} holds no property context")
    bag = PropertyBag()
    for key, data in heap.btree(heap.user_root):
        prop_id = struct.unpack_from("<H", key)[0]
        ptype, hnid = struct.unpack_from("<HI", data)
        inline = _INLINE_TYPES.get(ptype)
        if inline is not None:
            bag.put(prop_id, ptype, data[2:2 + inline])
        else:
            bag.put(prop_id, ptype, heap.value(hnid))
    return bag


def table_rows(node: Node) -> Iterator[PropertyBag]:
    """Each row of a node that holds a table context, as a PropertyBag."""
    heap, info, rows = _table(node)
    count = info[1]
    bitmap_at = struct.unpack_from("<H", info, 6)[0]
    columns = [struct.unpack_from("<IHBB", info, 22 + i * 8) for i in range(count)]
    for row in rows:
        yield _row(heap, row, columns, bitmap_at)


def table_row_ids(node: Node) -> list[int]:
    """The row ids of a table (a folder's item and subfolder node ids), read without
    decoding the other columns: each row starts with its id ([MS-PST] 2.3.4.4.1)."""
    _, _, rows = _table(node)
    return [struct.unpack_from("<I", row)[0] for row in rows]


def _table(node: Node) -> tuple[Heap, bytes, Iterator[bytes]]:
    heap = Heap(node)
    if heap.signature != TC_SIGNATURE:
        raise PstFormatError(f"node {node.nid:#x} holds no table")
    info = heap.get(heap.user_root)
    if len(info) < 22 or info[0] != TC_SIGNATURE:
        raise PstFormatError(f"the table of node {node.nid:#x} has a bad header")
    row_size = struct.unpack_from("<H", info, 8)[0]
    rows_hnid = struct.unpack_from("<I", info, 14)[0]
    if rows_hnid == 0 or row_size == 0:
        return heap, info, iter(())
    if rows_hnid & 0x1F == 0:
        chunks = [heap.get(rows_hnid)]
    else:
        sub = node.subnode(rows_hnid)
        if sub is None:
            raise PstFormatError(f"the rows of table {node.nid:#x} are missing")
        chunks = sub.blocks()
    rows = (chunk[start:start + row_size] for chunk in chunks
            for start in range(0, len(chunk) - row_size + 1, row_size))
    return heap, info, rows


def _row(heap: Heap, row: bytes, columns: list[tuple[int, int, int, int]],
         bitmap_at: int) -> PropertyBag:
    bag = PropertyBag()
    for tag, offset, size, bit in columns:
        if not row[bitmap_at + bit // 8] & (0x80 >> (bit % 8)):
            continue  # the cell is empty
        ptype, prop_id = tag & 0xFFFF, tag >> 16
        cell = row[offset:offset + size]
        if ptype in _INLINE_TYPES or ptype in _FIXED_8:
            bag.put(prop_id, ptype, cell)
        elif size == 4:
            hnid = struct.unpack_from("<I", cell)[0]
            try:
                bag.put(prop_id, ptype, heap.value(hnid))
            except PstFormatError:
                # One unreadable cell (a missing subnode) should not cost the whole row.
                continue
        else:
            bag.put(prop_id, ptype if ptype else PT_BINARY, cell)
    return bag
