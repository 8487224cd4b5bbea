"""A writer of large Unicode PSTs, for the benchmark and the scale tests (the corpus PSTs are
a few MB).

It writes the [MS-PST] structures the readers use, no more: header, NBT/BBT B-trees (as many
levels as needed), blocks (with XBLOCK data trees), subnode blocks, heap-on-node, property
contexts and table contexts (rows in subnodes when large). Two page formats: the 512-byte pages
of Outlook 2003-2010, or the 4 KiB pages of Outlook 2013 OSTs (version 36: 4 KiB B-tree pages
with 2-byte entry counts, 24-byte block trailers, data blocks zlib-compressed where that makes
them smaller, the block B-tree giving their inflated size); blocks unencoded or encoded with
compressible (permute) or high (cyclic) encryption, as readpst decodes them: encoded, then
compressed. Folders Inbox, Sent Items,
Archive, Archive/2001 and Archive/2002 (half of them) hold N messages with realistic sizes:
plain and HTML bodies, 1-4 recipients, transport headers on received mail, one in five with an
attachment of 10-80 KB.
No allocation maps or CRCs (neither readpst nor mailvault reads them): Outlook would want
them, so this is a test fixture, not an exporter.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from mailvault.outlook.ndb import (
    CRYPT_CYCLIC,
    CRYPT_NONE,
    CRYPT_PERMUTE,
    PERMUTE_ENCODE,
    crypt_cyclic,
)

BLOCK_MAX = 8176
HEAP_VALUE_MAX = 3580
HEAP_SPILL = 7000  # past this much in one heap block, values go to subnodes
WORDS = ("account", "budget", "contract", "delivery", "energy", "forecast", "gas", "invoice",
         "legal", "market", "meeting", "pipeline", "power", "price", "quarter", "report",
         "review", "risk", "schedule", "settlement", "storage", "trade", "transport", "update",
         "volume", "weather", "west", "desk", "deal", "memo", "agreement", "counterparty")


def align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


@dataclass(frozen=True)
class Format:
    """The file format to write: page size and block encoding."""

    four_k: bool = False
    crypt: int = CRYPT_NONE

    @property
    def page(self) -> int:
        return 4096 if self.four_k else 512

    @property
    def entries(self) -> int:  # bytes of B-tree entries in a page
        return 4056 if self.four_k else 488


UNICODE = Format()


class PstWriter:
    """Appends blocks and pages, then writes the B-trees and the header."""

    def __init__(self, handle: BinaryIO, fmt: Format = UNICODE) -> None:
        self.out = handle
        self.fmt = fmt
        self.pos = 0x4400
        self.out.write(b"\0" * self.pos)
        self.bbt: list[tuple[int, int, int, int]] = []
        self.nbt: list[tuple[int, int, int, int]] = []
        self.next_bid = 4
        self.next_page = 4

    def block(self, data: bytes, internal: bool = False) -> int:
        assert len(data) <= BLOCK_MAX
        bid = self.next_bid | (2 if internal else 0)
        self.next_bid += 4
        stored = data
        if not internal and self.fmt.crypt == CRYPT_PERMUTE:
            stored = data.translate(PERMUTE_ENCODE)
        elif not internal and self.fmt.crypt == CRYPT_CYCLIC:
            stored = crypt_cyclic(data, bid)
        if self.fmt.four_k:
            packed = zlib.compress(stored)
            stored = packed if len(packed) < len(stored) else stored
            # cb, wSig, dwCRC, bid, then (4 KiB format) a reserved word and the inflated size.
            trailer = struct.pack("<HHIQHHI", len(stored), 0, 0, bid, 0, len(data), 0)
        else:
            trailer = struct.pack("<HHIQ", len(stored), 0, 0, bid)
        size = align(len(stored) + len(trailer), 64)
        self.out.write(stored + b"\0" * (size - len(trailer) - len(stored)) + trailer)
        self.bbt.append((bid, self.pos, len(stored), len(data)))
        self.pos += size
        return bid

    def data(self, payload: bytes) -> int:
        """A node's or subnode's data: one block, or blocks under an XBLOCK."""
        if len(payload) <= BLOCK_MAX:
            return self.block(payload)
        bids = [self.block(payload[i:i + BLOCK_MAX]) for i in range(0, len(payload), BLOCK_MAX)]
        assert len(bids) <= (BLOCK_MAX - 8) // 8
        xblock = struct.pack("<BBHI", 1, 1, len(bids), len(payload))
        return self.block(xblock + b"".join(struct.pack("<Q", b) for b in bids), internal=True)

    def subnodes(self, entries: list[tuple[int, int, int]]) -> int:
        if not entries:
            return 0
        assert len(entries) <= (BLOCK_MAX - 8) // 24
        body = b"".join(struct.pack("<QQQ", *e) for e in sorted(entries))
        return self.block(struct.pack("<BBHI", 2, 0, len(entries), 0) + body, internal=True)

    def node(self, nid: int, payload: bytes, subs: list[tuple[int, int, int]],
             parent: int) -> None:
        self.nbt.append((nid, self.data(payload), self.subnodes(subs), parent))

    def _btree(self, entries: list[tuple[int, bytes]], ptype: int) -> tuple[int, int]:
        level, fmt = 0, self.fmt
        while True:
            size = len(entries[0][1])
            per_page = fmt.entries // size
            upper = []
            self.pos = align(self.pos, fmt.page)
            self.out.seek(self.pos)
            for start in range(0, len(entries), per_page):
                chunk = entries[start:start + per_page]
                bid = self.next_page
                self.next_page += 4
                body = b"".join(e for _, e in chunk).ljust(fmt.entries, b"\0")
                if fmt.four_k:  # 2-byte counts, 10 bytes of padding, a 24-byte trailer
                    meta = struct.pack("<HHBB", len(chunk), per_page, size, level) + bytes(10)
                    trailer = struct.pack("<BBHIQQ", ptype, ptype, 0, 0, bid, 0)
                else:
                    meta = struct.pack("<BBBB", len(chunk), per_page, size, level) + bytes(4)
                    trailer = struct.pack("<BBHIQ", ptype, ptype, 0, 0, bid)
                self.out.write(body + meta + trailer)
                upper.append((chunk[0][0], struct.pack("<QQQ", chunk[0][0], bid, self.pos)))
                self.pos += fmt.page
            if len(upper) == 1:
                _, entry = upper[0]
                _, bid, offset = struct.unpack("<QQQ", entry)
                return bid, offset
            entries, level = upper, level + 1

    def finish(self) -> None:
        # BBT leaf: bid, offset, cb, then cRef (512-byte pages) or cbInflated and cRef (4 KiB).
        bbt = self._btree([(b, struct.pack("<QQHHHH", b, ib, cb, inflated, 2, 0)
                            if self.fmt.four_k else struct.pack("<QQHHI", b, ib, cb, 2, 0))
                           for b, ib, cb, inflated in sorted(self.bbt)], 0x80)
        nbt = self._btree([(n, struct.pack("<QQQII", n, d, s, p, 0))
                           for n, d, s, p in sorted(self.nbt)], 0x81)
        header = bytearray(564)
        header[0:4] = b"!BDN"
        header[8:10] = b"SM"
        struct.pack_into("<HHBB", header, 10, 36 if self.fmt.four_k else 23, 19, 1, 1)
        struct.pack_into("<QQ", header, 24, 0, self.next_page)
        struct.pack_into("<QQ", header, 184, self.pos, 0)
        struct.pack_into("<QQQQ", header, 216, nbt[0], nbt[1], bbt[0], bbt[1])
        header[512] = 0x80
        header[513] = self.fmt.crypt
        struct.pack_into("<Q", header, 516, self.next_bid)
        self.out.seek(0)
        self.out.write(bytes(header))


class Heap:
    """One heap-on-node block; values too large for it become subnodes of the node."""

    def __init__(self, writer: PstWriter, signature: int, subs: list[tuple[int, int, int]]
                 ) -> None:
        self.writer, self.signature, self.subs = writer, signature, subs
        self.allocations: list[bytes] = []

    def alloc(self, data: bytes) -> int:
        used = sum(len(a) + 2 for a in self.allocations)
        if len(data) > HEAP_VALUE_MAX or used + len(data) > HEAP_SPILL:
            nid = ((len(self.subs) + 1) << 5) | 0x1F
            self.subs.append((nid, self.writer.data(data), 0))
            return nid
        self.allocations.append(data)
        return len(self.allocations) << 5

    def build(self, user_root: int) -> bytes:
        out = bytearray(12)
        offsets = []
        for allocation in self.allocations:
            offsets.append(len(out))
            out += allocation
        offsets.append(len(out))
        if len(out) % 2:
            out += b"\0"
        page_map = len(out)
        out += struct.pack("<HH", len(self.allocations), 0)
        out += b"".join(struct.pack("<H", o) for o in offsets)
        out[0:12] = struct.pack("<HBBI", page_map, 0xEC, self.signature, user_root) + b"\0" * 4
        assert len(out) <= BLOCK_MAX, len(out)
        return bytes(out)


Prop = tuple[int, int, bytes]  # id, type, value


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def filetime(when: datetime) -> bytes:
    ticks = int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)
    return struct.pack("<Q", ticks)


def property_context(writer: PstWriter, props: list[Prop]) -> tuple[bytes,
                                                                    list[tuple[int, int, int]]]:
    subs: list[tuple[int, int, int]] = []
    heap = Heap(writer, 0xBC, subs)
    records = []
    for prop_id, ptype, value in sorted(props):
        if ptype in (0x2, 0x3, 0xB):
            records.append(struct.pack("<HH", prop_id, ptype) + value.ljust(4, b"\0")[:4])
        else:
            records.append(struct.pack("<HHI", prop_id, ptype, heap.alloc(value) if value else 0))
    body = heap.alloc(b"".join(records))
    root = heap.alloc(struct.pack("<BBBBI", 0xB5, 2, 6, 0, body))
    return heap.build(root), subs


def table_context(writer: PstWriter, columns: list[tuple[int, int]],
                  rows: list[dict[int, bytes]]) -> tuple[bytes, list[tuple[int, int, int]]]:
    """A table; columns are (tag, cell size 4/2/1); the first must be the row id."""
    subs: list[tuple[int, int, int]] = []
    heap = Heap(writer, 0x7C, subs)
    layout, offset = [], 0
    for width in (4, 2, 1):
        for index, (tag, size) in enumerate(columns):
            if size == width:
                layout.append((tag, offset, size, index))
                offset += size
    ends = [sum(s for _, s in columns if s >= w) for w in (4, 2, 1)]
    row_size = offset + (len(columns) + 7) // 8
    packed = []
    for row in rows:
        cells = bytearray(row_size)
        for tag, at, size, bit in layout:
            value = row.get(tag)
            if value is None:
                continue
            if tag & 0xFFFF in (0x1F, 0x102):
                value = struct.pack("<I", heap.alloc(value))
            cells[at:at + size] = value[:size].ljust(size, b"\0")
            cells[offset + bit // 8] |= 0x80 >> (bit % 8)
        packed.append(bytes(cells))
    per_block = BLOCK_MAX // row_size
    data = b"".join(packed)
    if len(data) <= HEAP_VALUE_MAX:
        rows_hnid = heap.alloc(data) if data else 0
    else:
        blocks = [b"".join(packed[i:i + per_block]) for i in range(0, len(packed), per_block)]
        bids = [writer.block(b) for b in blocks]
        if len(bids) == 1:
            top = bids[0]
        else:
            xblock = struct.pack("<BBHI", 1, 1, len(bids), len(data))
            top = writer.block(xblock + b"".join(struct.pack("<Q", b) for b in bids), True)
        rows_hnid = ((len(subs) + 1) << 5) | 0x1F
        subs.append((rows_hnid, top, 0))
    index_records = b"".join(struct.pack("<II", struct.unpack_from("<I", r)[0], n)
                             for n, r in enumerate(packed))
    # Large tables get an empty row index (multi-level B-trees are not written; no reader
    # here uses the index).
    index_root = heap.alloc(index_records) if 0 < len(index_records) <= HEAP_VALUE_MAX else 0
    row_index = heap.alloc(struct.pack("<BBBBI", 0xB5, 4, 4, 0, index_root))
    descriptors = b"".join(struct.pack("<IHBB", tag, at, size, bit)
                           for tag, at, size, bit in sorted(layout))
    info = struct.pack("<BB4HIII", 0x7C, len(columns), *ends, row_size, row_index, rows_hnid,
                       0) + descriptors
    return heap.build(heap.alloc(info)), subs


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def message(writer: PstWriter, rng: random.Random, n: int, when: datetime,
            received: bool, lean: bool = False) -> tuple[bytes, list[tuple[int, int, int]]]:
    """One message's property context and subnodes; ``lean``: a one-line body, no HTML, no
    attachment (for files of hundreds of thousands of items)."""
    sender = f"user{rng.randrange(400)}@example.com"
    recipients = [f"user{rng.randrange(400)}@example.com" for _ in range(rng.randint(1, 4))]
    subject = f"{sentence(rng, rng.randint(3, 8)).capitalize()} #{n}"
    body = sentence(rng, 12) if lean else "\r\n\r\n".join(
        sentence(rng, rng.randint(20, 80)) for _ in range(rng.randint(2, 12)))
    props: list[Prop] = [
        (0x001A, 0x1F, utf16("IPM.Note")), (0x0037, 0x1F, utf16(subject)),
        (0x0039, 0x40, filetime(when)), (0x0E06, 0x40, filetime(when)),
        (0x0042, 0x1F, utf16(sender.split("@")[0])), (0x0064, 0x1F, utf16("SMTP")),
        (0x0065, 0x1F, utf16(sender)), (0x0C1A, 0x1F, utf16(sender.split("@")[0])),
        (0x0C1E, 0x1F, utf16("SMTP")), (0x0C1F, 0x1F, utf16(sender)),
        (0x0E04, 0x1F, utf16("; ".join(recipients))), (0x1000, 0x1F, utf16(body)),
        (0x1035, 0x1F, utf16(f"<{n}.{rng.randrange(10**9)}@example.com>")),
        (0x3FDE, 0x03, struct.pack("<I", 65001)), (0x0E07, 0x03, struct.pack("<I", 1)),
    ]
    if not lean and rng.random() < 0.5:
        html = "<html><body>" + "".join(f"<p>{p}</p>" for p in body.split("\r\n\r\n"))
        props.append((0x1013, 0x102, (html + "</body></html>").encode()))
    if received:
        relay = f"mx{rng.randrange(9)}.example.com ([10.0.0.{rng.randrange(250)}])"
        headers = (f"Received: from {relay} by mail.example.com; "
                   f"{when:%a, %d %b %Y %H:%M:%S} +0000\r\n"
                   f"From: {sender}\r\nTo: {', '.join(recipients)}\r\nSubject: {subject}\r\n"
                   f"Date: {when:%a, %d %b %Y %H:%M:%S} +0000\r\n"
                   f"Message-ID: <{n}@example.com>\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n")
        props.append((0x007D, 0x1F, utf16(headers)))
    subs: list[tuple[int, int, int]] = []
    columns = [(0x67F20003, 4), (0x0C150003, 4), (0x3001001F, 4), (0x3002001F, 4),
               (0x3003001F, 4), (0x39FE001F, 4)]
    rows = [{0x67F20003: struct.pack("<I", i), 0x0C150003: struct.pack("<I", 1),
             0x3001001F: utf16(r.split("@")[0]), 0x3002001F: utf16("SMTP"),
             0x3003001F: utf16(r), 0x39FE001F: utf16(r)} for i, r in enumerate(recipients)]
    heap, table_subs = table_context(writer, columns, rows)
    subs.append((0x692, writer.data(heap), writer.subnodes(table_subs)))
    if not lean and rng.random() < 0.2:
        data = rng.randbytes(rng.randint(10_000, 80_000))
        name = f"report-{n}.bin"
        # Every fourth one as an OLE object (method 6): the data sits in a subnode that the
        # PT_OBJECT value names, not in the property itself.
        ole = n % 4 == 0
        object_nid = (0x100 << 5) | 0x1F
        attach_props: list[Prop] = [
            (0x3705, 0x03, struct.pack("<I", 6 if ole else 1)), (0x3707, 0x1F, utf16(name)),
            (0x3704, 0x1F, utf16(name[:8])), (0x370E, 0x1F, utf16("application/octet-stream")),
            (0x0E20, 0x03, struct.pack("<I", len(data))),
            (0x3701, 0x0D, struct.pack("<II", object_nid, len(data))) if ole
            else (0x3701, 0x102, data)]
        attach_heap, attach_subs = property_context(writer, attach_props)
        if ole:
            attach_subs.append((object_nid, writer.data(data), 0))
        attach_nid = (1 << 5) | 0x05
        subs.append((attach_nid, writer.data(attach_heap), writer.subnodes(attach_subs)))
        table, att_table_subs = table_context(
            writer, [(0x67F20003, 4), (0x0E200003, 4), (0x3707001F, 4), (0x37050003, 4)],
            [{0x67F20003: struct.pack("<I", attach_nid), 0x0E200003: struct.pack("<I", len(data)),
              0x3707001F: utf16(name), 0x37050003: struct.pack("<I", 1)}])
        subs.append((0x671, writer.data(table), writer.subnodes(att_table_subs)))
        props.append((0x0E1B, 0x0B, b"\x01"))
    heap, value_subs = property_context(writer, props)
    return heap, subs + value_subs


def folder(writer: PstWriter, nid: int, parent: int, name: str, children: list[int],
           items: list[int]) -> None:
    heap, subs = property_context(writer, [
        (0x3001, 0x1F, utf16(name)), (0x3602, 0x03, struct.pack("<I", len(items))),
        (0x3603, 0x03, b"\0\0\0\0"), (0x360A, 0x0B, b"\x01" if children else b"\0"),
        (0x3613, 0x1F, utf16("IPF.Note"))])
    writer.node(nid, heap, subs, parent)
    for kind, ids in ((0x0D, children), (0x0E, items)):
        table, table_subs = table_context(writer, [(0x67F20003, 4), (0x67F30003, 4)],
                                          [{0x67F20003: struct.pack("<I", i),
                                            0x67F30003: b"\0\0\0\0"} for i in ids])
        writer.node((nid & ~0x1F) | kind, table, table_subs, 0)
    table, table_subs = table_context(writer, [(0x67F20003, 4)], [])
    writer.node((nid & ~0x1F) | 0x0F, table, table_subs, 0)


def write_pst(path: Path, messages: int, seed: int = 7, fmt: Format = UNICODE,
              lean: bool = False) -> None:
    """A PST of ``messages`` messages in five folders, in the given format."""
    rng = random.Random(seed)
    with open(path, "wb") as handle:
        writer = PstWriter(handle, fmt)
        top, names = 0x8022, ["Inbox", "Sent Items", "Archive", "Archive/2001", "Archive/2002"]
        nids = {name: ((0x500 + i) << 5) | 0x02 for i, name in enumerate(names)}
        contents: dict[str, list[int]] = {name: [] for name in names}
        start = datetime(2001, 1, 1, tzinfo=UTC)
        for n in range(messages):
            name = names[min(n % 8, len(names) - 1)]  # half go to the last folder
            nid = ((0x10000 + n) << 5) | 0x04
            when = start + timedelta(minutes=37 * n)
            heap, subs = message(writer, rng, n, when, received=name != "Sent Items", lean=lean)
            writer.node(nid, heap, subs, nids[name])
            contents[name].append(nid)
        heap, subs = property_context(writer, [
            (0x3001, 0x1F, utf16("Benchmark mailbox")), (0x0FF9, 0x102, bytes(16)),
            (0x35E0, 0x102, bytes(20) + struct.pack("<I", top))])
        writer.node(0x21, heap, subs, 0)
        heap, subs = property_context(writer, [(0x0001, 0x03, struct.pack("<I", 251)),
                                               (0x0002, 0x102, b""), (0x0003, 0x102, b""),
                                               (0x0004, 0x102, b"")])
        writer.node(0x61, heap, subs, 0)
        folder(writer, 0x122, 0x122, "", [top], [])
        folder(writer, top, 0x122, "Top of Personal Folders",
               [nids[n] for n in names if "/" not in n], [])
        for name in names:
            children = [nids[c] for c in names if c.startswith(name + "/")]
            parent = nids[name.rsplit("/", 1)[0]] if "/" in name else top
            folder(writer, nids[name], parent, name.rsplit("/", 1)[-1], children,
                   contents[name])
        writer.finish()
