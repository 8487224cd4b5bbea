"""Raw bytes to ParsedMessage: what the catalog and the index need to know about a message.

Parsing never raises. The MIME tree is the standard library's ``compat32`` one (about six times
faster than ``policy.default``): for a well-formed message it is assembled here from the
delimiter ranges of ``multipart.py``, each part's headers read by the standard parser, and
anything irregular (a missing delimiter, a stray carriage return, a header defect) is left to
the standard parser as a whole, so its defects are reported as before. The headers that are
indexed are decoded here, tolerantly. Whatever went wrong is listed in ``defects``.
"""

from __future__ import annotations

import binascii
import email
import email.message
import email.parser
import email.utils
import quopri
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.policy import Compat32
from typing import Any, Protocol

from mailvault.charsets import decode_bytes, header_text
from mailvault.multipart import split_multipart

ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "bcc")


class _RawHeaders(Compat32):
    """compat32, but header values come back as strings even when they hold 8-bit bytes
    (as surrogate escapes), so that header_text() can decode them; compat32 itself wraps
    them in Header objects that cannot be decoded reliably."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


POLICY = _RawHeaders()
MAX_DEPTH = 20
# The top-level header section read: past this, headers are not parsed (the standard
# parser took 100 s and 1.1 GB over 30 MB folded into 10 million lines); the stored
# message keeps every byte, and a defect says what was not read.
MAX_HEADER_BYTES = 2 * 1024 * 1024
_TOO_DEEP = "MIME structure nested too deeply"
_HEADER_PARSER = email.parser.BytesHeaderParser(policy=POLICY)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# Transfer encodings a multipart entity may have (RFC 2045 6.4); others are a defect that the
# standard parser reports.
_MULTIPART_ENCODINGS = ("7bit", "8bit", "binary")


@dataclass(frozen=True)
class Address:
    """One mailbox from an address header: display name and lower-cased address."""

    name: str
    address: str

    def __str__(self) -> str:
        if self.name and self.address:
            return f"{self.name} <{self.address}>"
        return self.address or self.name


@dataclass
class Attachment:
    """A part a mail client would show as an attachment (or an inline file)."""

    filename: str
    content_type: str
    size: int
    text: str = ""
    inline: bool = False


@dataclass
class ParsedMessage:
    """Everything indexed or displayed about one message, decoded to text."""

    subject: str = ""
    addresses: dict[str, list[Address]] = field(default_factory=dict)
    date: datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    body: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def addrs(self, role: str) -> list[Address]:
        """The addresses of one header ('from', 'to', 'cc', 'bcc', 'sender', 'reply-to')."""
        return self.addresses.get(role, [])


@dataclass(frozen=True)
class Extracted:
    """An attachment's text, and what was not read of it (empty: nothing was left out), in
    words for a person: a size over the limit, a time limit, an archive member too large."""

    text: str
    skipped: str = ""


# An extractor turns an attachment's decoded bytes into text; parse() gets one passed in so
# that this module stays free of PDF/Office libraries and of process and time limits.
Extractor = Callable[[bytes, str, str], Extracted]


@dataclass
class TextBudget:
    """What is left of the text one message may give the index (body and attachment text
    together): every piece of text is taken through it once, so a message cannot make the
    index (or the worker building its document) hold more than ``max_chars``."""

    max_chars: int | None
    used: int = 0
    cut: bool = False

    def take(self, text: str) -> str:
        """``text``, or as much of it as the budget still allows."""
        if self.max_chars is None or not text:
            return text
        left = self.max_chars - self.used
        if len(text) > left:
            self.cut = True
            text = text[:max(0, left)]
        self.used += len(text)
        return text

    @property
    def spent(self) -> bool:
        return self.max_chars is not None and self.used >= self.max_chars


def parse(raw: bytes, extract: Extractor | None = None,
          max_text_chars: int | None = None) -> ParsedMessage:
    """Parse raw RFC 5322 bytes. Never raises: problems end up in ``defects``.

    ``max_text_chars`` caps the text taken from the message (body and attachment text
    together, nested messages included); text past it is dropped and a defect says so.
    """
    out = ParsedMessage()
    raw, header_bytes = _cap_headers(raw)
    if header_bytes is not None:
        out.defects.append(f"header section of {header_bytes} bytes: only its first "
                           f"{MAX_HEADER_BYTES} bytes were read")
    try:
        msg = message_tree(raw)
    except Exception as exc:  # the parser is tolerant, but a message must never be lost to it
        out.defects.append(f"unparseable: {type(exc).__name__}: {exc}")
        return out
    texts: list[str] = []
    budget = TextBudget(max_text_chars)
    try:
        _read_headers(msg, out)
        _walk(msg, out, texts, _Walk(extract, budget), depth=0)
    except RecursionError:
        out.defects.append(_TOO_DEEP)
    except Exception as exc:  # a parser bug must cost searchability, never the message
        out.defects.append(f"parse stopped: {type(exc).__name__}: {exc}")
    if budget.cut:
        out.defects.append(f"indexed text cut at {max_text_chars} characters")
    out.body = "\n".join(t for t in texts if t)
    if not raw.strip():
        out.defects.append("empty message")
    elif not msg.keys():
        out.defects.append("no headers")
    return out


def _cap_headers(raw: bytes) -> tuple[bytes, int | None]:
    """``raw`` with its top-level header section cut at MAX_HEADER_BYTES (the body kept),
    and the section's full size; ``raw`` and None when it fits."""
    if len(raw) <= MAX_HEADER_BYTES:
        return raw, None
    # bytes.find, not the regular expression: it runs at memory speed over 30 MB.
    found = [at for at in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if at >= 0]
    newline = min(found) if found else None  # the line end before the blank line
    header_end = newline if newline is not None else len(raw)
    if header_end <= MAX_HEADER_BYTES:
        return raw, None
    # Cut inside the line the limit falls in (a million-character Subject keeps its start),
    # ended as the message ends its lines.
    end_of_line = b"\r\n" if raw[:header_end].endswith(b"\r") else b"\n"
    kept = raw[:MAX_HEADER_BYTES].rstrip(b"\r")
    if not kept.endswith(b"\n"):
        kept += end_of_line
    if newline is None:
        return kept, header_end
    # Then the blank line and the body: what follows the last header line's own line end.
    return kept + raw[newline + 1:], header_end


def message_tree(raw: bytes) -> email.message.Message:
    """The ``compat32`` MIME tree of raw bytes, as the standard parser builds it."""
    if b"\r" in raw and raw.count(b"\r") != raw.count(b"\r\n"):
        # A lone CR ends a line for the standard parser: its line splitting decides.
        return email.message_from_bytes(raw, policy=POLICY)
    tree = _tree(raw, 0, len(raw), "text/plain", 0)
    return tree if tree is not None else email.message_from_bytes(raw, policy=POLICY)


def _tree(raw: bytes, start: int, end: int, default_type: str,
          depth: int) -> email.message.Message | None:
    """The entity in ``raw[start:end]``, or None when it is irregular in any way."""
    if depth > MAX_DEPTH:
        return None
    body_start = _body_start(raw, start, end)
    if body_start is None:
        return None
    msg = _HEADER_PARSER.parsebytes(raw[start:body_start])
    if msg.defects or msg.get_payload():
        return None  # not a clean header block: a line that is no header, a continuation first
    msg.set_default_type(default_type)
    maintype = msg.get_content_maintype()
    if maintype == "message":
        if msg.get_content_subtype() == "delivery-status":
            return None  # blocks of headers: the standard parser's own case
        inner = _tree(raw, body_start, end, "text/plain", depth + 1)
        if inner is None:
            return None
        msg.set_payload([inner])
    elif maintype == "multipart":
        boundary = msg.get_boundary()
        encoding = str(msg.get("content-transfer-encoding", "8bit")).lower()
        # A boundary folded over lines can never match a delimiter line: the standard parser
        # reports that.
        if not boundary or encoding not in _MULTIPART_ENCODINGS or "\n" in boundary \
                or "\r" in boundary:
            return None
        split = split_multipart(raw, body_start, end,
                                boundary.encode("ascii", "surrogateescape"))
        if not split.closed or not split.parts:
            return None
        child_type = "message/rfc822" if msg.get_content_subtype() == "digest" else "text/plain"
        children: list[email.message.Message | str] = []
        for part_start, part_end in split.parts:
            child = _tree(raw, part_start, part_end, child_type, depth + 1)
            if child is None:
                return None
            children.append(child)
        msg.set_payload(children)
    else:
        msg.set_payload(raw[body_start:end].decode("ascii", "surrogateescape"))
    return msg


def _body_start(raw: bytes, start: int, end: int) -> int | None:
    """Where the body of the entity at ``start`` begins (after the blank line)."""
    for blank in (b"\r\n", b"\n"):
        if raw.startswith(blank, start, end):
            return start + len(blank)  # no headers at all
    match = _BLANK_LINE.search(raw, start, end)
    return match.end() if match is not None else None


class _Headers(Protocol):
    """What _read_headers reads: a Message, or a clean header block's _HeaderFields."""

    defects: list[Any]

    def get(self, name: str, failobj: None = None) -> Any: ...

    def get_all(self, name: str, failobj: None = None) -> Any: ...


def _read_headers(msg: _Headers, out: ParsedMessage) -> None:
    for defect in msg.defects:
        out.defects.append(type(defect).__name__)
    out.subject = header_text(msg.get("subject"))
    for role in ADDRESS_HEADERS:
        values = msg.get_all(role)
        if values:
            out.addresses[role] = parse_addresses(values)
    out.message_id = header_text(msg.get("message-id")).strip()
    out.in_reply_to = header_text(msg.get("in-reply-to"))
    out.references = header_text(msg.get("references"))
    out.date = parse_date(msg.get("date"))
    if msg.get("date") and out.date is None:
        out.defects.append("unreadable Date header")


def display_headers(raw: bytes) -> list[tuple[str, str]]:
    """Every top-level header, decoded, in order (for showing a message to a person)."""
    try:
        msg = email.message_from_bytes(raw, policy=POLICY)
    except Exception:
        return []
    return [(name, header_text(value)) for name, value in msg.items()]


def parse_addresses(values: list[str]) -> list[Address]:
    """Decode address header values into Address records (groups flattened)."""
    result = []
    for raw_value in values:
        text = raw_value
        if not text.isascii():
            text = decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")[0]
        pairs = _simple_addresses(text)
        if pairs is None:
            try:
                pairs = email.utils.getaddresses([text])
            except Exception:
                pairs = [("", text)]
        for name, addr in pairs:
            name = header_text(name)
            addr = addr.strip().strip("<>").lower()
            if "=?" in addr:
                addr = header_text(addr)
            if name or addr:
                result.append(Address(name=name, address=addr))
    return result


def _simple_addresses(text: str) -> list[tuple[str, str]] | None:
    """Split the common plain forms (``a@b``, ``Name <a@b>``, comma lists) without the slow
    general parser; None when quoting, comments or groups need the real one."""
    if any(c in text for c in '"(\\:;'):
        return None
    pairs = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece:
            continue
        if "<" in piece:
            name, _, rest = piece.partition("<")
            addr, closed, tail = rest.partition(">")
            if not closed or tail.strip() or "<" in rest:
                return None
            pairs.append((name.strip(), addr.strip()))
        elif " " in piece or "@" not in piece:
            return None
        else:
            pairs.append(("", piece))
    return pairs


def parse_date(value: str | None) -> datetime | None:
    """A Date header as an aware UTC datetime, or None when it cannot be read."""
    if not value:
        return None
    text = header_text(value)
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if not 1970 <= parsed.year <= 2200:
        return None
    return parsed


@dataclass(frozen=True)
class _Walk:
    """What every step of a walk over the MIME tree shares."""

    extract: Extractor | None
    budget: TextBudget


def _walk(
    part: email.message.Message,
    out: ParsedMessage,
    texts: list[str],
    walk: _Walk,
    depth: int,
) -> None:
    if depth > MAX_DEPTH:
        if _TOO_DEEP not in out.defects:
            out.defects.append(_TOO_DEEP)
        return
    if depth and part.defects:
        out.defects.extend(type(d).__name__ for d in part.defects)
    ctype = part.get_content_type()
    maintype = ctype.partition("/")[0]
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if not isinstance(sub, email.message.Message):
                    continue
                if ctype == "message/rfc822":
                    _nested_message(sub, out, texts, walk, depth)
                else:
                    _walk(sub, out, texts, walk, depth + 1)
        return
    filename = part_filename(part)
    disposition = (part.get("content-disposition") or "").split(";")[0].strip().lower()
    charset = part.get_content_charset() if maintype == "text" else None
    _leaf(LeafHeaders(ctype, charset, filename, disposition), _payload_bytes(part, out), out, texts,
          walk)


@dataclass(frozen=True)
class LeafHeaders:
    """What the walk reads from a leaf part's headers."""

    content_type: str
    charset: str | None  # only for text/* parts (the only ones decoded as text)
    filename: str
    disposition: str


def _leaf(leaf: LeafHeaders, data: bytes, out: ParsedMessage, texts: list[str],
          walk: _Walk) -> None:
    """A leaf part's decoded bytes become body text or an attachment (with its text)."""
    ctype = leaf.content_type
    maintype = ctype.partition("/")[0]
    is_attachment = bool(leaf.filename) or leaf.disposition == "attachment" or maintype not in (
        "text",
        "multipart",
    )
    budget = walk.budget
    if not is_attachment and maintype == "text":
        if not budget.spent:
            text = _part_text(leaf.charset, data, out)
            texts.append(budget.take(html_to_text(text) if ctype == "text/html" else text))
        return
    attachment = Attachment(
        filename=leaf.filename,
        content_type=ctype,
        size=len(data),
        inline=leaf.disposition == "inline",
    )
    # Once the budget is spent an attachment is still named and counted, just not read.
    if not budget.spent:
        attachment.text = budget.take(_attachment_text(leaf, data, out, walk.extract))
    out.attachments.append(attachment)


def _attachment_text(leaf: LeafHeaders, data: bytes, out: ParsedMessage,
                     extract: Extractor | None) -> str:
    ctype, filename = leaf.content_type, leaf.filename
    if ctype == "text/html":
        return html_to_text(_part_text(leaf.charset, data, out))
    if ctype.partition("/")[0] == "text":
        return _part_text(leaf.charset, data, out)
    if extract is not None and data:
        extracted = extract(data, filename, ctype)
        if extracted.skipped:
            # Recorded with the message, so `show` and the message page say why the
            # attachment's text is missing or partial.
            out.defects.append(f"attachment {filename or '(unnamed)'}: {extracted.skipped}")
        return extracted.text
    return ""


def _nested_message(
    sub: email.message.Message,
    out: ParsedMessage,
    texts: list[str],
    walk: _Walk,
    depth: int,
) -> None:
    """A forwarded message: its headers and text become searchable as attachment text.

    The ``.eml`` attachment's text is the nested message's headers and its own text; the
    nested message's attachments (forwarded messages nested in it among them) are listed
    beside it with their own text. Each piece of text is taken once: repeating the inner
    attachments' text in the ``.eml`` text doubled the text at every level of nesting.
    """
    inner = ParsedMessage()
    _read_headers(sub, inner)
    # The headers first: under the text cap an outer level outranks the levels inside it.
    summary = [inner.subject] + [str(a) for r in ("from", "to", "cc") for a in inner.addrs(r)]
    inner_texts = [walk.budget.take("\n".join(summary))]
    _walk(sub, inner, inner_texts, walk, depth + 1)
    body = "\n".join(inner_texts)
    name = (inner.subject or "message") + ".eml"
    out.attachments.append(Attachment(filename=name, content_type="message/rfc822",
                                      size=len(body), text=body))
    out.attachments.extend(inner.attachments)
    # The deepest level says "nested too deeply"; the levels above need not repeat it.
    out.defects.extend(d for d in inner.defects if d not in out.defects or d != _TOO_DEEP)


def part_filename(part: email.message.Message) -> str:
    """The file name a part gives itself (Content-Disposition filename or Content-Type
    name), decoded; empty when it gives none."""
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except Exception:
        name = ""
    if isinstance(name, tuple):  # RFC 2231 value that collapse could not decode
        name = name[2]
    return header_text(str(name)) if name else ""


def _payload_bytes(part: email.message.Message, out: ParsedMessage) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        out.defects.append(f"undecodable body: {type(exc).__name__}")
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, str):
            return payload.encode("ascii", "surrogateescape")
        return b""
    cte = (part.get("content-transfer-encoding") or "").strip().lower()
    if cte and cte not in ("7bit", "8bit", "binary", "base64", "quoted-printable"):
        out.defects.append(f"unknown transfer encoding {cte!r}")
    return data if isinstance(data, bytes) else b""


def _part_text(charset: str | None, data: bytes, out: ParsedMessage) -> str:
    text, doubtful = decode_bytes(data, charset)
    if doubtful:
        out.defects.append(f"charset {charset!r} did not decode the text")
    return text


def html_to_text(html: str) -> str:
    """Visible text of an HTML document (scripts and styles dropped)."""
    if not html.strip():
        return ""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, head"):
        node.decompose()
    root = tree.body or tree.root
    if root is None:
        return ""
    return " ".join(root.text(separator=" ").split())


@dataclass(frozen=True)
class KnownLeaf:
    """A leaf part of a message whose source built it: what its headers say, and where its
    body (as transfer-encoded) lies in the raw bytes."""

    headers: LeafHeaders
    encoding: str  # 7bit, 8bit, quoted-printable or base64
    start: int
    end: int


@dataclass(frozen=True)
class KnownMessage:
    """What parse() reads from a message that a source built itself, known without parsing it
    again: the top-level headers as parse() reads them, and the leaf parts in the order its
    walk meets them. A source gives one only for a message parse() reads on its fast path
    (clean header blocks, delimiters it finds, no lone CR, no nested message), so that
    parse_known() gives exactly what parse() would."""

    headers: ParsedMessage
    leaves: tuple[KnownLeaf, ...]


def known_headers(head: bytes, content_type: str) -> ParsedMessage | None:
    """The top-level header fields parse() reads from a header block its builder wrote
    (blank line included, CRLF line ends), or None when the standard parser would not read it
    cleanly, or the block's first Content-Type field is not ``content_type`` (the builder's
    own, written last)."""
    fields = _HeaderFields.read(head)
    if fields is None or fields.get("content-type") != content_type:
        return None
    out = ParsedMessage()
    _read_headers(fields, out)
    return out


# A line the standard parser takes as a header field of its own ("From " aside).
_FIELD_LINE = re.compile(r"[\x21-\x39\x3b-\x7e]+:")


class _HeaderFields:
    """A clean header block's fields (name, value) exactly as the compat32 parser keeps them
    (the value after the colon, leading blanks dropped, continuation lines as they are, the
    last line end dropped), read without the standard parser's per-line machinery."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        # By lower-case name, in order: _read_headers looks a dozen names up per message.
        self._by_name: dict[str, list[str]] = {}
        for name, value in fields:
            self._by_name.setdefault(name.lower(), []).append(value)
        self.defects: list[Any] = []  # a block with any defect is not read here at all

    @classmethod
    def read(cls, head: bytes) -> _HeaderFields | None:
        """The fields of a CRLF header block ending in an empty line; None when the
        standard parser would see it otherwise (a bare line end, a line that is no field, a
        continuation first, too long, not ASCII)."""
        if len(head) > MAX_HEADER_BYTES or not head.isascii() or not head.endswith(
                b"\r\n\r\n") or head.count(b"\n") != head.count(b"\r\n") or head.count(
                b"\r") != head.count(b"\r\n"):
            return None
        lines = head[:-4].decode("ascii").split("\r\n")
        fields: list[tuple[str, list[str]]] = []
        for line in lines:
            if line[:1] in (" ", "\t") and line.strip():
                if not fields:
                    return None
                fields[-1][1].append("\r\n" + line)
            elif _FIELD_LINE.match(line):
                name, value = line.split(":", 1)
                fields.append((name, [value.lstrip(" \t")]))
            else:
                return None
        return cls([(name, "".join(parts)) for name, parts in fields])

    def get(self, name: str, failobj: None = None) -> str | None:
        """The first field of that name's value (Message.get)."""
        found = self._by_name.get(name.lower())
        return found[0] if found else failobj

    def get_all(self, name: str, failobj: None = None) -> list[str] | None:
        """Every field of that name's value (Message.get_all)."""
        found = self._by_name.get(name.lower())
        return list(found) if found else failobj


def leaf_headers(head: bytes) -> LeafHeaders | None:
    """What the walk reads from a leaf part's header block (blank line included); None when
    parse() would not read the block cleanly."""
    msg = _HEADER_PARSER.parsebytes(head)
    if msg.defects or msg.get_payload():
        return None
    ctype = msg.get_content_type()
    return LeafHeaders(
        ctype, msg.get_content_charset() if ctype.startswith("text/") else None,
        part_filename(msg),
        (msg.get("content-disposition") or "").split(";")[0].strip().lower())


def parse_known(raw: bytes, known: KnownMessage, extract: Extractor | None = None,
                max_text_chars: int | None = None) -> ParsedMessage:
    """parse(raw) for a message whose structure its source already told (KnownMessage): the
    same result, without building the MIME tree again. Never raises."""
    head = known.headers
    out = ParsedMessage(subject=head.subject,
                        addresses={role: list(found) for role, found in head.addresses.items()},
                        date=head.date, message_id=head.message_id,
                        in_reply_to=head.in_reply_to, references=head.references,
                        defects=list(head.defects))
    texts: list[str] = []
    budget = TextBudget(max_text_chars)
    walk = _Walk(extract, budget)
    try:
        for leaf in known.leaves:
            _leaf(leaf.headers, _decoded(raw[leaf.start:leaf.end], leaf.encoding), out, texts,
                  walk)
    except Exception as exc:  # as in parse(): a bug must cost searchability, never the message
        out.defects.append(f"parse stopped: {type(exc).__name__}: {exc}")
    if budget.cut:
        out.defects.append(f"indexed text cut at {max_text_chars} characters")
    out.body = "\n".join(t for t in texts if t)
    return out


def _decoded(payload: bytes, encoding: str) -> bytes:
    """A body's bytes decoded as the standard library's get_payload(decode=True) does."""
    if encoding == "quoted-printable":
        return quopri.decodestring(payload)
    if encoding == "base64":
        # Clean base64 (a builder's own, in whole lines) decodes the same as the standard
        # library's tolerant decoder would.
        return binascii.a2b_base64(payload)
    return payload
