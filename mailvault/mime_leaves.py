"""The leaf parts of a message, decoded, for showing and downloading (not for indexing).

``message.parse`` reads what the catalog and the index need; a person looking at a message
needs the parts themselves: the HTML body, the images it refers to by ``cid:``, the
attachments' bytes. Leaves are numbered in tree order, so a number names the same part on
every read of the same bytes. Walking never raises and never goes deeper than the parser
does.
"""

from __future__ import annotations

import contextlib
import email.message
from dataclasses import dataclass

from mailvault.charsets import decode_bytes
from mailvault.message import MAX_DEPTH, message_tree, part_filename

# A message can be built to have any number of parts: showing one never lists more.
MAX_LEAVES = 1000


@dataclass(frozen=True)
class Leaf:
    """One leaf part: its place (``number``), its type and names, and its decoded bytes."""

    number: int
    content_type: str
    filename: str
    content_id: str
    disposition: str
    charset: str | None
    data: bytes

    @property
    def is_body_text(self) -> bool:
        """A text part that is the message's own text, not an attachment."""
        return (self.content_type in ("text/plain", "text/html") and not self.filename
                and self.disposition != "attachment")

    def text(self) -> str:
        """The part's bytes decoded in its charset (tolerantly)."""
        return decode_bytes(self.data, self.charset)[0]


def leaves(raw: bytes) -> list[Leaf]:
    """Every leaf part of the message in tree order (at most MAX_LEAVES); never raises."""
    found: list[Leaf] = []
    # A viewer shows what it could read and never fails (RecursionError is an Exception).
    with contextlib.suppress(Exception):
        _walk(message_tree(raw), found, 0)
    return found


def leaf(raw: bytes, number: int) -> Leaf | None:
    """The leaf with this number, or None."""
    return next((part for part in leaves(raw) if part.number == number), None)


def _walk(part: email.message.Message, found: list[Leaf], depth: int) -> None:
    if depth > MAX_DEPTH or len(found) >= MAX_LEAVES:
        return
    payload = part.get_payload()
    if part.is_multipart() and isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, email.message.Message):
                _walk(sub, found, depth + 1)
        return
    found.append(Leaf(
        number=len(found),
        content_type=part.get_content_type(),
        filename=part_filename(part),
        content_id=(part.get("content-id") or "").strip().strip("<>"),
        disposition=(part.get("content-disposition") or "").split(";")[0].strip().lower(),
        charset=part.get_content_charset(),
        data=_decoded(part),
    ))


def _decoded(part: email.message.Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("ascii", "surrogateescape") if isinstance(payload, str) else b""
