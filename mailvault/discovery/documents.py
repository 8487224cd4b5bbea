"""What an export holds for one message: its documents (the message, and each attachment
as a native linked to it), their control numbers, and where each file goes.

Control numbers are ``MV`` and eight digits, given in message-id order when the job starts;
a message's attachments are ``<parent>.<NNN>`` (001 on), so a family reads together and
numbers never depend on what was exported before a crash. Every path is a POSIX path
relative to the export folder, made only of safe characters:

    natives/<folder or custodian>/<control>.eml     the exact archived bytes (eml format)
    mbox/<folder or custodian>.mbox                 mboxrd, one per folder (mbox format)
    attachments/<control>/<control>.<NNN>_<name>    each attachment's decoded bytes
    text/<control>.txt, text/<control>.<NNN>.txt    extracted text (UTF-8)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from mailvault.message import Extractor, html_to_text
from mailvault.mime_leaves import leaves
from mailvault.store.catalog import MessageRow

PREFIX = "MV"
_UNSAFE = re.compile(r"[^\w.@+=,()\- ]", re.ASCII)
_SEGMENT_CHARS = 80

def control_number(position: int) -> str:
    """The control number of the message at this position (1 on) of an export."""
    return f"{PREFIX}{position:08d}"


def safe_segment(text: str) -> str:
    """A name usable as one path segment anywhere: ASCII letters, digits and a few marks;
    everything else (and "." or ".." alone) becomes "_"."""
    cleaned = _UNSAFE.sub("_", text.strip())[:_SEGMENT_CHARS].strip()
    return "_" if cleaned in ("", ".", "..") else cleaned


def place_path(place: str) -> str:
    """A folder name ("INBOX/Sent") as safe path segments ("INBOX/Sent")."""
    segments = [safe_segment(s) for s in place.replace("\\", "/").split("/") if s.strip()]
    return "/".join(segments) or "_"


@dataclass(frozen=True)
class MessageFacts:
    """What the catalog says of a message that its manifest rows carry."""

    row: MessageRow
    envelope_to: list[str]
    sources: list[str]
    place: str  # its folder, or its custodian in a by-custodian export


@dataclass
class Built:
    """The documents of one message and the files to write for them (path -> bytes); the
    native .eml or mbox entry is written by the caller."""

    documents: list[dict[str, Any]]
    files: list[tuple[str, bytes]] = field(default_factory=list)


def build(position: int, raw: bytes, facts: MessageFacts, native_path: str,
          extract: Extractor) -> Built:
    """The message's documents: the message itself first, then one per attachment."""
    control = control_number(position)
    row = facts.row
    parts = leaves(raw)
    body = "\n\n".join(p.text() for p in parts
                       if p.is_body_text and p.content_type == "text/plain")
    if not body:
        body = "\n\n".join(html_to_text(p.text()) for p in parts
                           if p.is_body_text and p.content_type == "text/html")
    attachments = [p for p in parts if not p.is_body_text]
    children = [f"{control}.{n:03d}" for n in range(1, len(attachments) + 1)]
    family_last = children[-1] if children else control
    date = row.date.isoformat() if row.date else ""
    common = {"id": row.id, "date": date, "from": row.from_addr, "to": row.to_addrs,
              "cc": row.cc_addrs, "envelope_to": facts.envelope_to, "subject": row.subject,
              "folder": row.folder, "source": facts.sources, "custodian": facts.place,
              "family_first": control, "family_last": family_last}
    built = Built(documents=[])
    attachment_list = []
    for child, part in zip(children, attachments, strict=True):
        name = part.filename or f"part-{part.number}"
        digest = hashlib.sha256(part.data).hexdigest()
        attachment_list.append({"name": name, "sha256": digest})
        number = child.rsplit(".", 1)[1]
        path = f"attachments/{control}/{child}_{safe_segment(name)}"
        text_path = f"text/{control}.{number}.txt"
        built.files.append((path, part.data))
        built.files.append((text_path, extract(part.data, name, part.content_type)
                            .text.encode("utf-8", "surrogatepass")))
        built.documents.append({**common, "control": child, "type": "attachment",
                                "parent": control, "children": [], "sha256": digest,
                                "size": len(part.data), "filename": name,
                                "content_type": part.content_type, "attachments": [],
                                "path": path, "text_path": text_path})
    text_path = f"text/{control}.txt"
    built.files.append((text_path, _message_text(row, body).encode("utf-8", "surrogatepass")))
    built.documents.insert(0, {**common, "control": control, "type": "message", "parent": "",
                               "children": children, "sha256": row.sha256, "size": row.size,
                               "filename": native_path.rsplit("/", 1)[1],
                               "content_type": "message/rfc822",
                               "attachments": attachment_list, "path": native_path,
                               "text_path": text_path})
    return built


def _message_text(row: MessageRow, body: str) -> str:
    head = [f"From: {row.from_addr}", f"To: {row.to_addrs}"]
    if row.cc_addrs:
        head.append(f"Cc: {row.cc_addrs}")
    head += [f"Date: {row.date.isoformat() if row.date else ''}", f"Subject: {row.subject}"]
    return "\n".join(head) + "\n\n" + body
