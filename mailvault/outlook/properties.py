"""MAPI properties: the typed values every Outlook item is made of, in PST and MSG alike.

A PropertyBag maps a 16-bit property id to (property type, raw little-endian bytes) and decodes
on request: UTF-16 strings, 8-bit strings in the item's code page, FILETIME dates, integers.
Named properties (ids 0x8000 and up, e.g. an appointment's start) are resolved through the
file's NameMap, which has the same layout in a PST (node 0x61) and an MSG (__nameid storage).
"""

from __future__ import annotations

import codecs
import struct
import uuid
from datetime import UTC, datetime, timedelta

PT_SHORT = 0x0002
PT_LONG = 0x0003
PT_FLOAT = 0x0004
PT_ERROR = 0x000A
PT_BOOLEAN = 0x000B
PT_OBJECT = 0x000D
PT_I8 = 0x0014
PT_STRING8 = 0x001E
PT_UNICODE = 0x001F
PT_SYSTIME = 0x0040
PT_BINARY = 0x0102

PS_MAPI = uuid.UUID("00020328-0000-0000-c000-000000000046")
PS_PUBLIC_STRINGS = uuid.UUID("00020329-0000-0000-c000-000000000046")

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_STRING_TYPES = (PT_UNICODE, PT_STRING8)
# Windows code pages whose Python codec name is not simply "cp<number>".
_CODEPAGES = {
    936: "gb18030", 20936: "gb18030", 54936: "gb18030", 52936: "hz", 20127: "ascii",
    65001: "utf-8", 65000: "utf-7", 1200: "utf-16-le", 1201: "utf-16-be",
    50220: "iso2022_jp", 50221: "iso2022_jp_ext", 50222: "iso2022_jp",
    51932: "euc_jp", 51936: "gb18030", 51949: "cp949", 20932: "euc_jp", 10000: "mac_roman",
    10007: "mac_cyrillic", 20866: "koi8_r", 21866: "koi8_u",
    **{28590 + n: f"iso8859_{n}" for n in range(1, 16)},
}


def codec_for_codepage(codepage: int | None) -> str | None:
    """The Python codec for a Windows code page number, or None when it has none."""
    if not codepage:
        return None
    name = _CODEPAGES.get(codepage, f"cp{codepage}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def filetime(value: int) -> datetime | None:
    """A FILETIME (100 ns ticks since 1601) as an aware UTC datetime; None when unset."""
    if value <= 0 or value >= 0x7FFFFFFFFFFFFFFF:
        return None
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


class PropertyBag:
    """The properties of one item (message, recipient, attachment, folder)."""

    def __init__(self, codepage: str | None = None) -> None:
        self._values: dict[int, tuple[int, bytes]] = {}
        # UTF-16 strings decoded once: the MIME builder asks for the same few (class, subject,
        # names, addresses) several times per item. 8-bit ones depend on the code page, which
        # is set after the bag is filled, so they are decoded each time.
        self._texts: dict[int, str] = {}
        self.codepage = codepage  # Python codec for 8-bit strings; cp1252 when unknown
        self.names: NameMap | None = None

    def put(self, prop_id: int, ptype: int, data: bytes) -> None:
        """Record a value; a Unicode string wins over an 8-bit copy of the same property."""
        if ptype == PT_STRING8 and self._values.get(prop_id, (0,))[0] == PT_UNICODE:
            return
        self._values[prop_id] = (ptype, data)
        if self._texts:
            self._texts.pop(prop_id, None)

    def __contains__(self, prop_id: int) -> bool:
        return prop_id in self._values

    def type_of(self, prop_id: int) -> int | None:
        """The property type of a present property, or None."""
        found = self._values.get(prop_id)
        return found[0] if found else None

    def raw(self, prop_id: int) -> bytes | None:
        """The undecoded bytes of a property, or None."""
        found = self._values.get(prop_id)
        return found[1] if found else None

    def text(self, prop_id: int) -> str | None:
        """A string property decoded (UTF-16, or 8-bit in the item's code page)."""
        value = self._texts.get(prop_id)
        if value is not None:
            return value
        found = self._values.get(prop_id)
        if found is None or found[0] not in _STRING_TYPES:
            return None
        ptype, data = found
        if ptype == PT_UNICODE:
            value = data.decode("utf-16-le", "replace")
        else:
            value = decode_8bit(data, self.codepage)
        value = value.split("\x00", 1)[0] if "\x00" in value else value
        if ptype == PT_UNICODE:
            self._texts[prop_id] = value
        return value

    def integer(self, prop_id: int) -> int | None:
        """An integer or boolean property as int, or None."""
        found = self._values.get(prop_id)
        if found is None:
            return None
        ptype, data = found
        if ptype == PT_SHORT and len(data) >= 2:
            return int(struct.unpack_from("<h", data)[0])
        if ptype in (PT_LONG, PT_ERROR) and len(data) >= 4:
            return int(struct.unpack_from("<i", data)[0])
        if ptype == PT_BOOLEAN and data:
            return 1 if data[0] else 0
        if ptype == PT_I8 and len(data) >= 8:
            return int(struct.unpack_from("<q", data)[0])
        return None

    def time(self, prop_id: int) -> datetime | None:
        """A date property (PT_SYSTIME) as an aware UTC datetime, or None."""
        found = self._values.get(prop_id)
        if found is None or found[0] != PT_SYSTIME or len(found[1]) < 8:
            return None
        return filetime(struct.unpack_from("<Q", found[1])[0])

    def binary(self, prop_id: int) -> bytes | None:
        """A binary property's bytes, or None."""
        found = self._values.get(prop_id)
        if found is None or found[0] != PT_BINARY:
            return None
        return found[1]

    def named_id(self, guid: uuid.UUID, name: int | str) -> int | None:
        """The property id a named property has in this file, or None."""
        return self.names.lookup(guid, name) if self.names else None

    def named_text(self, guid: uuid.UUID, name: int | str) -> str | None:
        """A named string property, or None."""
        prop_id = self.named_id(guid, name)
        return self.text(prop_id) if prop_id is not None else None

    def named_time(self, guid: uuid.UUID, name: int | str) -> datetime | None:
        """A named date property, or None."""
        prop_id = self.named_id(guid, name)
        return self.time(prop_id) if prop_id is not None else None


def decode_8bit(data: bytes, codec: str | None) -> str:
    """8-bit text in a code page; without one, UTF-8 if it is valid, else cp1252."""
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass  # a wrong or unknown code page: the fallbacks below decide
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(codec or "cp1252", "replace")


class NameMap:
    """Named property (GUID + number or name) <-> the id it has in one file (0x8000 + n)."""

    def __init__(self, guids: bytes, entries: bytes, strings: bytes) -> None:
        self._ids: dict[tuple[uuid.UUID, int | str], int] = {}
        for start in range(0, len(entries) - 7, 8):
            ident, guid_field, index = struct.unpack_from("<IHH", entries, start)
            guid = _guid(guids, guid_field >> 1)
            if guid is None:
                continue
            key: int | str = ident
            if guid_field & 1:
                if ident + 4 > len(strings):
                    continue
                size = struct.unpack_from("<I", strings, ident)[0]
                key = strings[ident + 4:ident + 4 + size].decode("utf-16-le", "replace")
            self._ids[(guid, key)] = 0x8000 + index

    def lookup(self, guid: uuid.UUID, name: int | str) -> int | None:
        """The file's id of a named property, or None when the file never used it."""
        return self._ids.get((guid, name))


def _guid(guids: bytes, index: int) -> uuid.UUID | None:
    if index == 1:
        return PS_MAPI
    if index == 2:
        return PS_PUBLIC_STRINGS
    start = (index - 3) * 16
    if index < 3 or start + 16 > len(guids):
        return None
    return uuid.UUID(bytes_le=guids[start:start + 16])
