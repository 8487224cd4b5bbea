"""The messaging layer of a PST ([MS-PST] 2.4): folders, their items, and each item whole.

Folders are walked from the root folder through each folder's hierarchy table; a folder's items
come from its contents table. An item is read with its recipient table, attachment table,
attachments and attached items (recursively), one item at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailvault.outlook.item import Attachment, Item, item_codepage
from mailvault.outlook.ltp import property_context, table_row_ids, table_rows
from mailvault.outlook.ndb import Node, PstFile, PstFormatError, open_node
from mailvault.outlook.properties import PT_BINARY, PT_OBJECT, NameMap, PropertyBag
from mailvault.outlook.tags import (
    ATTACH_EMBEDDED_MSG,
    PR_ATTACH_DATA,
    PR_ATTACH_METHOD,
    PR_DISPLAY_NAME,
    PR_IPM_SUBTREE_ENTRYID,
    PR_LTP_ROW_ID,
)

NID_MESSAGE_STORE = 0x21
NID_NAME_TO_ID_MAP = 0x61
NID_ROOT_FOLDER = 0x122
NID_RECIPIENT_TABLE = 0x692
NID_ATTACHMENT_TABLE = 0x671
_HIERARCHY_TABLE = 0x0D
_CONTENTS_TABLE = 0x0E
_CODEPAGE_PROBES = 20
_MAX_DEPTH = 64  # folders and attached items nest; a cycle in a corrupt file must end


@dataclass(frozen=True)
class Folder:
    """A folder of the PST: its node id, its path below the top of the mailbox, and the name
    to file its items under (the path; for the top itself, the mailbox's name)."""

    nid: int
    path: str
    label: str = ""


class PstReader:
    """Reads folders and items of one PST/OST file."""

    def __init__(self, path: Path) -> None:
        self.file = PstFile(path)
        try:
            self.names = self._name_map()
            self.codepage = self._store_codepage()
            self._top, self.store_name = self._store()
            root = open_node(self.file, NID_ROOT_FOLDER)
            if root is None:
                raise PstFormatError("it has no root folder (it is damaged)")
        except BaseException:
            self.file.close()
            raise

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    def __enter__(self) -> PstReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _name_map(self) -> NameMap | None:
        node = open_node(self.file, NID_NAME_TO_ID_MAP)
        if node is None:
            return None
        try:
            bag = property_context(node)
        except (PstFormatError, struct.error, IndexError):
            return None  # without it named properties are unknown, plain mail still reads
        return NameMap(bag.raw(0x0002) or b"", bag.raw(0x0003) or b"", bag.raw(0x0004) or b"")

    def _store_codepage(self) -> str | None:
        """ANSI files store folder names in the code page of the Windows that wrote them,
        which no folder records: take the first one an item of the file declares."""
        if self.file.layout.unicode:
            return None
        pending, seen, looked = [NID_ROOT_FOLDER], set(), 0
        while pending and looked < _CODEPAGE_PROBES:
            nid = pending.pop(0)
            if nid in seen:
                continue
            seen.add(nid)
            try:
                pending += self._children(nid)
                for item_nid in self.item_ids(Folder(nid, "")):
                    looked += 1
                    node = open_node(self.file, item_nid)
                    codec = item_codepage(property_context(node)) if node else None
                    if codec is not None or looked >= _CODEPAGE_PROBES:
                        return codec
            except (PstFormatError, struct.error, IndexError):
                continue
        return None

    def _store(self) -> tuple[int | None, str]:
        """The node id of the top of the mailbox (IPM subtree) and the store's name."""
        node = open_node(self.file, NID_MESSAGE_STORE)
        if node is None:
            return None, ""
        try:
            props = property_context(node)
        except (PstFormatError, struct.error, IndexError):
            return None, ""
        props.codepage = self.codepage
        name = (props.text(PR_DISPLAY_NAME) or "").replace("/", "_")
        entry = props.binary(PR_IPM_SUBTREE_ENTRYID)
        if not entry or len(entry) < 24:
            return None, name
        nid: int = struct.unpack_from("<I", entry, 20)[0]
        return nid, name

    # -- folders ---------------------------------------------------------------------------

    def folders(self) -> Iterator[Folder | tuple[str, str]]:
        """Every folder, parents first; a folder that cannot be read is (path, reason)."""
        yield from self._folders(NID_ROOT_FOLDER, "", "", 0)

    def _folders(self, nid: int, path: str, label: str, depth: int) -> Iterator[
            Folder | tuple[str, str]]:
        yield Folder(nid, path, path or label)
        if depth >= _MAX_DEPTH:
            return
        try:
            children = self._children(nid)
        except (PstFormatError, struct.error, IndexError) as exc:
            yield (path or "/", f"its subfolders cannot be read: {exc}")
            return
        for child_nid in children:
            try:
                name = self._folder_name(child_nid)
            except (PstFormatError, struct.error, IndexError) as exc:
                yield (f"{path}/#{child_nid:#x}".lstrip("/"), f"the folder cannot be read: {exc}")
                continue
            top = child_nid == self._top
            child_path = "" if top else f"{path}/{name}".lstrip("/")
            yield from self._folders(child_nid, child_path,
                                     (self.store_name or name) if top else name, depth + 1)

    def _children(self, nid: int) -> list[int]:
        table = open_node(self.file, (nid & ~0x1F) | _HIERARCHY_TABLE)
        return [] if table is None else table_row_ids(table)

    def _folder_name(self, nid: int) -> str:
        node = open_node(self.file, nid)
        if node is None:
            raise PstFormatError(f"folder node {nid:#x} is missing")
        props = property_context(node)
        props.codepage = self.codepage
        return (props.text(PR_DISPLAY_NAME) or f"#{nid:#x}").replace("/", "_")

    def item_ids(self, folder: Folder) -> list[int]:
        """The node ids of a folder's items (a list of ints: small even for big folders)."""
        table = open_node(self.file, (folder.nid & ~0x1F) | _CONTENTS_TABLE)
        return [] if table is None else table_row_ids(table)

    # -- items -----------------------------------------------------------------------------

    def item(self, nid: int) -> Item:
        """One item, whole. Raises PstFormatError (or struct.error) when it is damaged."""
        node = open_node(self.file, nid)
        if node is None:
            raise PstFormatError(f"item {nid} is listed in its folder but missing from the file")
        return self._item(node, 0)

    def _item(self, node: Node, depth: int) -> Item:
        props = property_context(node)
        props.names = self.names
        props.codepage = item_codepage(props) or self.codepage
        item = Item(props)
        recipients = node.subnode(NID_RECIPIENT_TABLE)
        if recipients is not None:
            for row in table_rows(recipients):
                row.codepage = props.codepage
                item.recipients.append(row)
        attachments = node.subnode(NID_ATTACHMENT_TABLE)
        if attachments is not None:
            for row in table_rows(attachments):
                row_id = row.integer(PR_LTP_ROW_ID)
                sub = node.subnode(row_id & 0xFFFFFFFF) if row_id is not None else None
                if sub is None:
                    raise PstFormatError("an attachment listed in the message is missing")
                item.attachments.append(self._attachment(sub, props, depth))
        return item

    def _attachment(self, node: Node, parent: PropertyBag, depth: int) -> Attachment:
        props = property_context(node)
        props.names = self.names
        props.codepage = parent.codepage
        attachment = Attachment(props)
        if props.type_of(PR_ATTACH_DATA) != PT_OBJECT:
            return attachment
        # An object attachment: the value names a subnode holding an Outlook item (attached
        # message) or an OLE compound file (an embedded document), kept as its bytes.
        ref = props.raw(PR_ATTACH_DATA) or b""
        inner = node.subnode(struct.unpack_from("<I", ref)[0]) if len(ref) >= 4 else None
        if inner is None:
            raise PstFormatError("the object of an attachment is missing")
        if props.integer(PR_ATTACH_METHOD) == ATTACH_EMBEDDED_MSG and depth < _MAX_DEPTH:
            attachment.message = self._item(inner, depth + 1)
        else:
            props.put(PR_ATTACH_DATA, PT_BINARY, inner.data())
        return attachment
