"""Exchange / Microsoft 365 envelope journal reports: the original message and its recipients.

A journal report is a message carrying the header ``X-MS-Journal-Report`` whose body is
multipart: a text part listing the envelope (``Sender:``, ``Subject:``, ``Message-Id:``, then
``To:``/``Cc:``/``Bcc:``/``Recipient:`` lines, each address possibly followed by
``, Expanded: group`` or ``, Forwarded: address``) and a ``message/rfc822`` part holding the
original message. The original is cut out of the report's bytes unchanged (byte-exact), and the
listed recipients become its envelope: they are the Bcc and distribution-list evidence the
original's headers do not show.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass

JOURNAL_HEADER = b"x-ms-journal-report"
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "recipient")
_ADDRESS = re.compile(r"[^\s,;<>\"]+@[^\s,;<>\"]+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class JournalReport:
    """What a journal report says: the original's bytes, its sender, every recipient."""

    original: bytes
    sender: str | None
    recipients: tuple[str, ...]
    message_id: str | None


def unwrap(raw: bytes) -> JournalReport | None:
    """The original message and envelope of a journal report; None if this is not one, or
    if the report has no original attached (it is then archived as it is)."""
    head, body = _split_head(raw)
    fields = _header_fields(head)
    if not any(name == JOURNAL_HEADER for name, _ in fields):
        return None
    boundary = _boundary(fields)
    if boundary is None:
        return None
    envelope_text = ""
    original = None
    for part in _parts(body, boundary):
        part_head, part_body = _split_head(part)
        part_fields = _header_fields(part_head)
        content_type = _value(part_fields, b"content-type").lower()
        if content_type.startswith("message/rfc822") and original is None:
            original = _decoded(part_body, _value(part_fields, b"content-transfer-encoding"))
        elif (content_type.startswith("text/plain") or not content_type) and not envelope_text:
            envelope_text = _decoded(part_body, _value(
                part_fields, b"content-transfer-encoding")).decode("utf-8", "replace")
    if not original:
        return None
    sender, recipients, message_id = _envelope(envelope_text)
    return JournalReport(original, sender, recipients, message_id)


def _envelope(text: str) -> tuple[str | None, tuple[str, ...], str | None]:
    sender = None
    message_id = None
    recipients: list[str] = []
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == "sender":
            found = _ADDRESS.findall(value)
            sender = found[0] if found else None
        elif name == "message-id":
            message_id = value.strip() or None
        elif name in _RECIPIENT_FIELDS:
            # "To: a@x, Expanded: list@x" and "To: a@x, Forwarded: b@x": every address is
            # a recipient of this copy.
            for address in _ADDRESS.findall(value):
                if address.lower() not in (r.lower() for r in recipients):
                    recipients.append(address)
    return sender, tuple(recipients), message_id


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[:match.start()], raw[match.end():]


def _header_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    fields: list[tuple[bytes, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + line.strip())
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append((name.strip().lower(), value.strip()))
    return fields


def _value(fields: list[tuple[bytes, bytes]], name: bytes) -> str:
    for field_name, value in fields:
        if field_name == name:
            return value.decode("ascii", "replace")
    return ""


def _boundary(fields: list[tuple[bytes, bytes]]) -> bytes | None:
    content_type = _value(fields, b"content-type")
    if not content_type.lower().startswith("multipart/"):
        return None
    match = re.search(r'boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))', content_type, re.I)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).encode()


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts of a multipart body, byte-exact: the CRLF before a delimiter line belongs to
    the delimiter (RFC 2046 5.1.1), not to the part."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    parts = []
    start = None
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start:match.start()])
        if match.group(1):
            break
        start = match.end()
    return parts


def _decoded(body: bytes, transfer_encoding: str) -> bytes:
    encoding = transfer_encoding.strip().lower()
    try:
        if encoding == "base64":
            return base64.b64decode(body)
        if encoding == "quoted-printable":
            return quopri.decodestring(body)
    except (binascii.Error, ValueError):
        return body
    return body
