"""What the index knows about a message: the IndexDoc record and how it is built.

Kept free of Tantivy and the catalog so that the pipeline's worker processes, which build
documents, import little.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailvault.fsnames import shown
from mailvault.message import ParsedMessage
from mailvault.records import Provenance

FULL_TEXT_TIERS = ("active", "open")
# Han, kana, Hangul and CJK compatibility characters are indexed one character a token (and a
# query word becomes a phrase of them): CJK text has no spaces to split words on.
_MSGID = re.compile(r"<([^<>\s]+)>")
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")


@dataclass
class IndexDoc:
    """What the index knows about one message. Deep-tier documents leave the text empty."""

    id: int
    date: int | None
    size: int
    tier: str
    subject: str = ""
    body: str = ""
    attachment: str = ""
    filename: list[str] = field(default_factory=list)
    from_: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    folder: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    msgid: str = ""
    has: list[str] = field(default_factory=list)
    tag: list[str] = field(default_factory=list)
    # The sender's domains (lower case), for the sender-domain facet and fromdomain:.
    from_domains: list[str] = field(default_factory=list)
    # Message-IDs this message replies to or references (In-Reply-To, References).
    refs: list[str] = field(default_factory=list)
    # Every address party to the message (lower case): the catalog's address rows, so that
    # own-mail scoping is one index query (query.Party).
    party: list[str] = field(default_factory=list)
    # Not indexed: the To/Cc addresses, to tell envelope recipients that are Bcc apart.
    header_rcpts: frozenset[str] = frozenset()


def spaced(text: str) -> str:
    """Text ready for the analyzer: CJK characters set apart so each is a token."""
    return _CJK.sub(r" \1 ", text) if not text.isascii() else text


def message_ids(text: str) -> list[str]:
    """The Message-IDs in a header value (In-Reply-To, References), without brackets, in
    order, each once."""
    return list(dict.fromkeys(_MSGID.findall(text)))


def message_document(parsed: ParsedMessage, size: int, tier: str,
                     full_text: bool = True) -> IndexDoc:
    """What the message itself says (id 0 until with_arrivals()); runs in the workers."""
    return IndexDoc(
        id=0,
        date=int(parsed.date.timestamp()) if parsed.date else None,
        size=size,
        tier=tier,
        subject=parsed.subject,
        body=parsed.body if full_text else "",
        attachment="\n".join(a.text for a in parsed.attachments if a.text) if full_text else "",
        filename=[a.filename for a in parsed.attachments if a.filename],
        from_=[str(a) for a in parsed.addrs("from") + parsed.addrs("sender")],
        to=[str(a) for a in parsed.addrs("to")],
        cc=[str(a) for a in parsed.addrs("cc")],
        bcc=[str(a) for a in parsed.addrs("bcc")],
        msgid=parsed.message_id,
        has=["attachment"] if any(not a.inline for a in parsed.attachments) else [],
        from_domains=sorted({a.address.rpartition("@")[2].lower()
                             for a in parsed.addrs("from") if "@" in a.address}),
        refs=message_ids(f"{parsed.in_reply_to} {parsed.references}"),
        party=sorted({a.address for addrs in parsed.addresses.values() for a in addrs
                      if a.address}),
        header_rcpts=frozenset(a.address for r in ("to", "cc") for a in parsed.addrs(r)),
    )


def with_arrivals(doc: IndexDoc, message_id: int, arrivals: list[Provenance]) -> IndexDoc:
    """Fill in (in place: every caller holds a fresh document) the id and what the arrivals
    add: folders, sources, and envelope recipients the headers do not name (the Bcc
    evidence). Returns the same document. File names are indexed as people see them
    (fsnames.shown: a byte that is not UTF-8 as \\xNN)."""
    doc.id = message_id
    doc.from_ = doc.from_ + [shown(p.envelope_from) for p in arrivals if p.envelope_from]
    doc.bcc = doc.bcc + [shown(r) for p in arrivals for r in p.envelope_to
                         if r.lower() not in doc.header_rcpts]
    doc.folder = sorted({shown(p.folder) for p in arrivals if p.folder})
    doc.source = sorted({shown(f"{p.kind} {p.source}") for p in arrivals})
    envelope = {shown(r.lower()) for p in arrivals for r in p.envelope_to}
    envelope |= {shown(p.envelope_from.lower()) for p in arrivals if p.envelope_from}
    doc.party = sorted(set(doc.party) | envelope)
    if not doc.from_domains:
        senders = [shown(p.envelope_from) for p in arrivals if p.envelope_from]
        doc.from_domains = sorted({s.rpartition("@")[2].lower() for s in senders if "@" in s})
    return doc
