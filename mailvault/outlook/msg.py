"""Outlook .msg files ([MS-OXMSG]): one item in an OLE compound file.

The item's properties sit in the root storage: fixed-size values in the
``__properties_version1.0`` stream, variable-size ones each in a ``__substg1.0_IIIITTTT``
stream. Recipients and attachments are sub-storages; an attached item is a storage inside
its attachment, laid out like the root. Named properties come from ``__nameid_version1.0``.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import olefile

from mailvault.outlook.item import Attachment, Item, item_codepage
from mailvault.outlook.properties import PT_BINARY, PT_OBJECT, NameMap, PropertyBag
from mailvault.outlook.tags import PR_ATTACH_DATA

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PROPERTIES = "__properties_version1.0"
_NAMEID = "__nameid_version1.0"
_RECIPIENT = "__recip_version1.0_#"
_ATTACHMENT = "__attach_version1.0_#"
_EMBEDDED = "__substg1.0_3701000D"
_VALUE = re.compile(r"^__substg1\.0_([0-9A-Fa-f]{4})([0-9A-Fa-f]{4})$")
_VARIABLE_TYPES = {0x001E, 0x001F, 0x0102, PT_OBJECT}
_FIXED_SIZES = {0x0002: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x000B: 2, 0x0005: 8, 0x0006: 8,
                0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}
_MAX_DEPTH = 32


class MsgFormatError(Exception):
    """The file is an OLE file but not a readable Outlook item."""


def is_msg(path: Path) -> bool:
    """Whether a file is an OLE compound file holding an Outlook item."""
    try:
        if not olefile.isOleFile(str(path)):
            return False
        with olefile.OleFileIO(str(path)) as ole:
            return bool(ole.exists(_PROPERTIES))
    except (OSError, ValueError, struct.error):
        return False


def read_msg(path: Path) -> Item:
    """The item in an .msg file. Raises MsgFormatError when it cannot be read."""
    try:
        with olefile.OleFileIO(str(path)) as ole:
            return _MsgReader(ole).item()
    except MsgFormatError:
        raise
    except (OSError, ValueError, struct.error, IndexError, KeyError, TypeError) as exc:
        raise MsgFormatError(f"it is not a readable Outlook item ({exc})") from exc


class _MsgReader:
    def __init__(self, ole: olefile.OleFileIO) -> None:
        self.ole = ole
        self.tree: dict[tuple[str, ...], list[str]] = {}
        for entry in ole.listdir(streams=True, storages=True):
            for depth in range(len(entry)):
                children = self.tree.setdefault(tuple(entry[:depth]), [])
                if entry[depth] not in children:
                    children.append(entry[depth])
        if _PROPERTIES not in self.tree.get((), []):
            raise MsgFormatError("it is an OLE file but not an Outlook item")
        self.names = self._name_map()

    def item(self) -> Item:
        return self._item((), 32, 0)

    def _name_map(self) -> NameMap | None:
        base = (_NAMEID,)
        if _NAMEID not in self.tree.get((), []):
            return None
        return NameMap(self._stream((*base, "__substg1.0_00020102")),
                       self._stream((*base, "__substg1.0_00030102")),
                       self._stream((*base, "__substg1.0_00040102")))

    def _stream(self, path: tuple[str, ...]) -> bytes:
        if path[-1] not in self.tree.get(path[:-1], []):
            return b""
        data: bytes = self.ole.openstream(list(path)).read()
        return data

    def _bag(self, storage: tuple[str, ...], header: int) -> PropertyBag:
        bag = PropertyBag()
        bag.names = self.names
        children = self.tree.get(storage, [])
        for name in children:
            match = _VALUE.match(name)
            if match:
                prop_id, ptype = int(match.group(1), 16), int(match.group(2), 16)
                if ptype in _VARIABLE_TYPES and ptype != PT_OBJECT:
                    bag.put(prop_id, ptype, self._stream((*storage, name)))
        table = self._stream((*storage, _PROPERTIES))
        for start in range(header, len(table) - 15, 16):
            tag = struct.unpack_from("<I", table, start)[0]
            prop_id, ptype = tag >> 16, tag & 0xFFFF
            if ptype == PT_OBJECT:
                bag.put(prop_id, ptype, b"")
            elif ptype in _FIXED_SIZES and prop_id not in bag:
                bag.put(prop_id, ptype, table[start + 8:start + 8 + _FIXED_SIZES[ptype]])
        return bag

    def _item(self, storage: tuple[str, ...], header: int, depth: int) -> Item:
        props = self._bag(storage, header)
        props.codepage = item_codepage(props)
        item = Item(props)
        children = sorted(self.tree.get(storage, []))
        for name in children:
            if name.startswith(_RECIPIENT):
                recipient = self._bag((*storage, name), 8)
                recipient.codepage = props.codepage
                item.recipients.append(recipient)
        for name in children:
            if name.startswith(_ATTACHMENT):
                item.attachments.append(self._attachment((*storage, name), props, depth))
        return item

    def _attachment(self, storage: tuple[str, ...], parent: PropertyBag,
                    depth: int) -> Attachment:
        props = self._bag(storage, 8)
        props.codepage = parent.codepage
        attachment = Attachment(props)
        inner = (*storage, _EMBEDDED)
        if _EMBEDDED not in self.tree.get(storage, []):
            return attachment
        if _PROPERTIES in self.tree.get(inner, []):
            if depth < _MAX_DEPTH:
                attachment.message = self._item(inner, 24, depth + 1)
            return attachment
        # An embedded OLE object (a document, a picture): its native data, where it has some.
        for name, skip in (("CONTENTS", 0), ("\x01Ole10Native", 4), ("Package", 0)):
            if name in self.tree.get(inner, []):
                props.put(PR_ATTACH_DATA, PT_BINARY, self._stream((*inner, name))[skip:])
                break
        return attachment
