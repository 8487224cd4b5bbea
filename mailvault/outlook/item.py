"""One Outlook item read from a PST or an MSG file: properties, recipients, attachments.

The same model comes out of both readers, so one MIME builder serves both. An item is read
whole (one message and its attachments at a time), never a whole folder or file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailvault.outlook.properties import PropertyBag, codec_for_codepage
from mailvault.outlook.tags import (
    PR_INTERNET_CPID,
    PR_MESSAGE_CLASS,
    PR_MESSAGE_CODEPAGE,
    PR_MESSAGE_LOCALE_ID,
)

EMAIL = "email"
APPOINTMENT = "appointment"
CONTACT = "contact"
DISTRIBUTION_LIST = "distribution list"
TASK = "task"
NOTE = "note"
JOURNAL = "journal"
OTHER = "other"

# Message class prefixes (case-insensitive) and the kind they are; the first match wins.
# Meeting requests, read receipts and delivery reports are mail a client shows as mail.
_KINDS = (
    ("ipm.note", EMAIL), ("ipm.schedule.", EMAIL), ("report.", EMAIL), ("ipm.post", EMAIL),
    ("ipm.outlook.recall", EMAIL), ("ipm.recall", EMAIL), ("ipm.sharing", EMAIL),
    ("ipm.taskrequest", EMAIL), ("ipm.document", EMAIL),
    ("ipm.appointment", APPOINTMENT), ("ipm.contact", CONTACT), ("ipm.distlist", DISTRIBUTION_LIST),
    ("ipm.task", TASK), ("ipm.stickynote", NOTE), ("ipm.activity", JOURNAL),
)


@dataclass
class Attachment:
    """An attachment: its properties (data included) and, for an attached item, the item."""

    props: PropertyBag
    message: Item | None = None


@dataclass
class Item:
    """An Outlook item and what hangs off it."""

    props: PropertyBag
    recipients: list[PropertyBag] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def message_class(self) -> str:
        """PR_MESSAGE_CLASS, e.g. 'IPM.Note' ('' when missing)."""
        return (self.props.text(PR_MESSAGE_CLASS) or "").strip()

    @property
    def kind(self) -> str:
        """email, appointment, contact, distribution list, task, note, journal or other."""
        return kind_of(self.message_class)


def kind_of(message_class: str) -> str:
    """The kind of item a message class names (an item without a class is taken as mail)."""
    lowered = message_class.lower()
    if lowered in ("", "ipm"):
        return EMAIL
    for prefix, kind in _KINDS:
        if lowered.startswith(prefix):
            return kind
    return OTHER


def item_codepage(props: PropertyBag) -> str | None:
    """The codec of an item's 8-bit strings: its message code page, else the ANSI code page
    of its locale, else its body's code page."""
    codepages = (props.integer(PR_MESSAGE_CODEPAGE),
                 _locale_codepage(props.integer(PR_MESSAGE_LOCALE_ID) or 0),
                 props.integer(PR_INTERNET_CPID))
    for codepage in codepages:
        codec = codec_for_codepage(codepage)
        if codec is not None and codec not in _SEVEN_BIT:
            return codec
    return None


# Windows ANSI code page of a locale's primary language (LCID & 0x3FF) where it is not 1252.
_ANSI_CODEPAGES = {
    0x11: 932, 0x12: 949, 0x1E: 874, 0x2A: 1258, 0x08: 1253, 0x1F: 1254, 0x0D: 1255,
    0x01: 1256, 0x29: 1256, 0x20: 1256, 0x25: 1257, 0x26: 1257, 0x27: 1257,
    0x19: 1251, 0x22: 1251, 0x23: 1251, 0x02: 1251, 0x2F: 1251,
    0x05: 1250, 0x15: 1250, 0x0E: 1250, 0x1B: 1250, 0x24: 1250, 0x18: 1250, 0x1C: 1250,
    0x04: 936,
}
_TRADITIONAL_CHINESE = {0x0404, 0x0C04, 0x1404}  # Taiwan, Hong Kong, Macao: Big5


def _locale_codepage(lcid: int) -> int | None:
    if lcid in _TRADITIONAL_CHINESE:
        return 950
    return _ANSI_CODEPAGES.get(lcid & 0x3FF)


# 8-bit strings are never stored in a 7-bit encoding: such a code page says nothing.
_SEVEN_BIT = {"ascii", "iso2022_jp", "iso2022_jp_ext", "utf-7", "hz"}
