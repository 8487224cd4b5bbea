"""An Outlook item as RFC 5322 bytes, built deterministically.

The same item always becomes the same bytes (boundaries are digests of the parts they
separate, no dates or random values are invented), so importing a PST twice adds nothing.

Layout: multipart/mixed (when there are attachments) around multipart/alternative (when
there is more than one body form: text/plain, text/html, text/rtf) and the attachments; an
attached Outlook item becomes a message/rfc822 part, recursively.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
from email.header import Header
from email.utils import encode_rfc2231

from mailvault.message import KnownLeaf, KnownMessage, LeafHeaders, known_headers, leaf_headers
from mailvault.outlook.headers import CRLF, header_lines, subject
from mailvault.outlook.item import Attachment, Item
from mailvault.outlook.properties import PT_BINARY, codec_for_codepage, decode_8bit
from mailvault.outlook.rtf import read_rtf
from mailvault.outlook.tags import (
    PR_ATTACH_CONTENT_ID,
    PR_ATTACH_DATA,
    PR_ATTACH_FILENAME,
    PR_ATTACH_LONG_FILENAME,
    PR_ATTACH_MIME_TAG,
    PR_BODY,
    PR_DISPLAY_NAME,
    PR_HTML,
    PR_INTERNET_CPID,
    PR_RTF_COMPRESSED,
)

_CRLF = CRLF.encode()
_MAX_DEPTH = 32
_ASCII = bytes(range(128))
_MIME_CHARSETS = {"utf-8": "utf-8", "ascii": "us-ascii", "cp932": "shift_jis",
                  "gb18030": "gb18030", "cp936": "gbk", "cp949": "ks_c_5601-1987",
                  "cp950": "big5", "iso2022_jp": "iso-2022-jp", "iso2022_jp_ext": "iso-2022-jp",
                  "euc_jp": "euc-jp", "koi8_r": "koi8-r", "koi8_u": "koi8-u",
                  "cp874": "windows-874"}


class Part:
    """One MIME entity: header lines and body bytes (already transfer-encoded), and what the
    builder knows of it for KnownMessage: its transfer encoding, what a text part's headers
    say, and a multipart's parts with where each begins in its body."""

    def __init__(self, headers: list[str], body: bytes, *, inline: bool = False,
                 encoding: str = "", facts: LeafHeaders | None = None,
                 children: tuple[tuple[int, Part], ...] = ()) -> None:
        self.headers = headers
        self.body = body
        self.inline = inline  # shown inside the HTML body, not as an attachment
        self.encoding = encoding
        self.facts = facts
        self.children = children

    def head(self) -> bytes:
        """The header block, the empty line after it included."""
        return CRLF.join(self.headers).encode("ascii") + _CRLF + _CRLF

    def render(self) -> bytes:
        """The entity's bytes: headers, an empty line, the body."""
        return self.head() + self.body


def build_message(item: Item, depth: int = 0) -> bytes:
    """The RFC 5322 bytes of an email item (headers from the item, body rebuilt)."""
    return _built(item, depth)[0]


def build_known_message(item: Item) -> tuple[bytes, KnownMessage | None]:
    """build_message(), and what parse() would read from the bytes when the builder knows it
    exactly (None otherwise: signed or encrypted mail, attached items, unusual headers)."""
    raw, top = _built(item, 0)
    if top is None or raw.count(b"\r") != raw.count(b"\r\n"):
        return raw, None  # a lone CR: parse() leaves such a message to the standard parser
    head = top.head()
    # The body's own Content-Type line comes last (the item's were left out).
    declared = next(line for line in reversed(top.headers) if line.startswith("Content-Type:"))
    headers = known_headers(head, declared.split(":", 1)[1].lstrip(" \t"))
    leaves: list[KnownLeaf] = []
    if headers is None or not _known_leaves(top, len(head), leaves, top=True):
        return raw, None
    return raw, KnownMessage(headers, tuple(leaves))


def _built(item: Item, depth: int) -> tuple[bytes, Part | None]:
    """The message's bytes, and its top entity when the body was rebuilt part by part."""
    lines = header_lines(item)
    signed = _signed_entity(item)
    if signed is not None:
        # The signed MIME entity as it was received: headers, then its bytes untouched.
        return CRLF.join([*lines, "MIME-Version: 1.0"]).encode("ascii") + _CRLF + signed, None
    smime = _smime_body(item)
    body = smime or _body(item, depth)
    top = Part([*lines, "MIME-Version: 1.0", *body.headers], body.body,
               encoding=body.encoding, facts=body.facts, children=body.children)
    return top.render(), None if smime else top


def _known_leaves(part: Part, body_at: int, leaves: list[KnownLeaf], top: bool = False) -> bool:
    """The leaf parts below ``part`` (whose body begins at ``body_at`` in the message), in the
    order parse() walks them; False when one is not known exactly (a message part, say)."""
    if part.children:
        for offset, child in part.children:
            if not _known_leaves(child, body_at + offset + len(child.head()), leaves):
                return False
        return True
    # The top entity's headers are the message's: its facts are its body part's own.
    facts = part.facts if part.facts is not None or top else leaf_headers(part.head())
    if facts is None or not part.encoding or facts.content_type.startswith(
            ("message/", "multipart/")):
        return False
    leaves.append(KnownLeaf(facts, part.encoding, body_at, body_at + len(part.body)))
    return True



def _signed_entity(item: Item) -> bytes | None:
    """For a clear-signed S/MIME item, the multipart/signed entity Outlook keeps as its only
    attachment (headers included), so the signature still verifies."""
    if not item.message_class.lower().startswith("ipm.note.smime.multipartsigned"):
        return None
    if len(item.attachments) != 1:
        return None
    data = item.attachments[0].props.raw(PR_ATTACH_DATA) or b""
    head = data[:data.find(b"\n\n") if b"\n\n" in data else 2048].lower()
    if b"content-type:" not in head or b"multipart/signed" not in head:
        return None
    return data


def _smime_body(item: Item) -> Part | None:
    """For an encrypted or opaque-signed S/MIME item, its PKCS #7 attachment as the body."""
    if not item.message_class.lower().startswith("ipm.note.smime") or len(item.attachments) != 1:
        return None
    props = item.attachments[0].props
    mime = (props.text(PR_ATTACH_MIME_TAG) or "").strip().lower()
    if mime not in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        return None
    return Part([f'Content-Type: {mime}; name="smime.p7m"',
                 "Content-Transfer-Encoding: base64",
                 'Content-Disposition: attachment; filename="smime.p7m"'],
                _base64(props.raw(PR_ATTACH_DATA) or b""))


def _body(item: Item, depth: int) -> Part:
    forms, html = _forms(item)
    if not forms:
        forms = [text_part("", "plain")]
    main = forms[0] if len(forms) == 1 else multipart("alternative", forms)
    built = [attachment_part(a, html, depth) for a in item.attachments]
    parts = [p for p in built if p is not None]
    # Pictures the HTML shows (cid: references) sit with it in multipart/related (RFC 2387).
    inline = [p for p in parts if p.inline]
    if inline:
        main = multipart("related", [main, *inline], 'type="multipart/alternative"'
                         if len(forms) > 1 else f'type="{_content_type(forms[0])}"')
    attached = [p for p in parts if not p.inline]
    return multipart("mixed", [main, *attached]) if attached else main


def body_forms(item: Item) -> list[Part]:
    """text/plain, text/html and (only when it is the sole rich form) text/rtf."""
    return _forms(item)[0]


def _forms(item: Item) -> tuple[list[Part], str]:
    """The body parts, and the HTML as text (to see which attachments it shows inline)."""
    props = item.props
    plain = props.text(PR_BODY)
    forms = []
    html = html_part(item)
    html_source = html_text(item)
    rtf_part: Part | None = None
    compressed = props.binary(PR_RTF_COMPRESSED)
    if compressed and html is None:
        rtf = read_rtf(compressed)
        if rtf is not None:
            if rtf.html is not None:
                html = text_part(rtf.html, "html")
                html_source = rtf.html
            elif rtf.text is not None and not plain:
                plain = rtf.text
            elif rtf.text is None:
                rtf_part = Part(["Content-Type: text/rtf",
                                 "Content-Transfer-Encoding: base64"], _base64(rtf.rtf),
                                encoding="base64",
                                facts=LeafHeaders("text/rtf", None, "", ""))
    if plain:
        forms.append(text_part(plain, "plain"))
    if html is not None:
        forms.append(html)
    if rtf_part is not None:
        forms.append(rtf_part)
    return forms, html_source


def _content_type(part: Part) -> str:
    return part.headers[0].split(":", 1)[1].split(";", 1)[0].strip()


def html_part(item: Item) -> Part | None:
    """PR_HTML as text/html, its bytes kept in the code page PR_INTERNET_CPID names (the
    document's own <meta charset> says the same), else converted to UTF-8."""
    props = item.props
    data = props.raw(PR_HTML)
    if not data:
        return None
    if props.type_of(PR_HTML) != PT_BINARY:
        text = props.text(PR_HTML)
        return text_part(text, "html") if text else None
    data = data.rstrip(b"\x00")
    codec = codec_for_codepage(props.integer(PR_INTERNET_CPID))
    charset = mime_charset(codec)
    if codec and charset:
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            pass  # not in the declared code page: decode_8bit below makes the best of it
        else:
            return encoded_text_part(data, "html", charset)
    return text_part(decode_8bit(data, codec), "html")


def html_text(item: Item) -> str:
    """The item's HTML body as text ('' when it has none), to see which images it shows."""
    data = item.props.raw(PR_HTML)
    if not data:
        return ""
    return decode_8bit(data, codec_for_codepage(item.props.integer(PR_INTERNET_CPID)))


def mime_charset(codec: str | None) -> str | None:
    """The MIME charset name of a Python codec, when mail clients know one."""
    if codec is None:
        return None
    if codec.startswith("cp125"):
        return "windows-" + codec[2:]
    if codec.startswith("iso8859_"):
        return "iso-8859-" + codec[8:]
    return _MIME_CHARSETS.get(codec)


def text_part(text: str, subtype: str) -> Part:
    """A text/<subtype> part in UTF-8."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return encoded_text_part(data, subtype, "utf-8")


def encoded_text_part(data: bytes, subtype: str, charset: str) -> Part:
    """Text bytes in a charset as a part: 7bit when they can be, else quoted-printable
    (mostly ASCII) or base64."""
    headers = [f"Content-Type: text/{subtype}; charset={charset}"]
    if data.isascii() and all(len(line) <= 998 for line in data.split(b"\n")):
        body = data.replace(b"\r\n", b"\n").replace(b"\n", _CRLF)
        encoding = "7bit"
    elif len(data.translate(None, _ASCII)) * 5 < len(data) and b"\x1b" not in data:
        body = binascii.b2a_qp(data.replace(b"\r\n", b"\n"), istext=True).replace(b"\n", _CRLF)
        encoding = "quoted-printable"
    else:
        body = _base64(data)
        encoding = "base64"
    headers.append(f"Content-Transfer-Encoding: {encoding}")
    return Part(headers, body, encoding=encoding,
                facts=LeafHeaders(f"text/{subtype}", charset.lower(), "", ""))


def multipart(subtype: str, parts: list[Part], parameter: str = "") -> Part:
    """A multipart whose boundary is a digest of its parts (so it never occurs in them)."""
    rendered = [p.render() for p in parts]
    digest = hashlib.sha256(b"".join(rendered)).hexdigest()[:32]
    boundary = f"=_mv_{subtype[:3]}_{digest}"
    dash = f"--{boundary}".encode()
    body = b"".join(dash + _CRLF + r + _CRLF for r in rendered) + dash + b"--" + _CRLF
    extra = f"; {parameter}" if parameter else ""
    # Where each part begins in the body: after the delimiter line(s) before it.
    starts, at = [], 0
    for piece in rendered:
        at += len(dash) + 2
        starts.append(at)
        at += len(piece) + 2
    return Part([f'Content-Type: multipart/{subtype}; boundary="{boundary}"{extra}'], body,
                encoding="7bit", children=tuple(zip(starts, parts, strict=True)))


def attachment_name(attachment: Attachment) -> str:
    """The name Outlook shows for an attachment."""
    props = attachment.props
    for tag in (PR_ATTACH_LONG_FILENAME, PR_ATTACH_FILENAME, PR_DISPLAY_NAME):
        value = (props.text(tag) or "").strip()
        if value:
            return value
    return "attachment"


def attachment_part(attachment: Attachment, html: str, depth: int) -> Part | None:
    """An attachment as a MIME part: its data by value, or an attached item as a message."""
    name = attachment_name(attachment)
    if attachment.message is not None and depth < _MAX_DEPTH:
        inner = attachment.message
        name = subject(inner.props) or name
        raw = build_message(inner, depth + 1)
        encoding = "7bit" if raw.isascii() else "8bit"
        return Part(["Content-Type: message/rfc822",
                     f"Content-Transfer-Encoding: {encoding}",
                     "Content-Disposition: attachment; " + _param("filename", name)], raw)
    props = attachment.props
    if props.type_of(PR_ATTACH_DATA) != PT_BINARY:
        # A link to a file that was never inside the item, or an OLE object without native
        # data: nothing to attach.
        return None
    data = props.raw(PR_ATTACH_DATA) or b""
    mime = (props.text(PR_ATTACH_MIME_TAG) or "").strip().lower()
    if "/" not in mime or not mime.isascii() or " " in mime:
        mime = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    if mime == "message/rfc822" and _is_message_text(data):
        # An attached .eml: a message part (which may not be base64-encoded, RFC 2046 5.2.1).
        encoding = "7bit" if data.isascii() else "8bit"
        return Part(["Content-Type: message/rfc822", f"Content-Transfer-Encoding: {encoding}",
                     "Content-Disposition: attachment; " + _param("filename", name)],
                    data.replace(b"\r\n", b"\n").replace(b"\n", _CRLF))
    if mime == "message/rfc822":
        mime = "application/octet-stream"
    content_id = (props.text(PR_ATTACH_CONTENT_ID) or "").strip().strip("<>")
    inline = bool(content_id) and f"cid:{content_id}" in html
    headers = [f"Content-Type: {mime}; " + _param("name", name),
               "Content-Transfer-Encoding: base64",
               f"Content-Disposition: {'inline' if inline else 'attachment'}; "
               + _param("filename", name)]
    if content_id and content_id.isascii():
        headers.append(f"Content-ID: <{content_id}>")
    return Part(headers, _base64(data), inline=inline, encoding="base64",
                facts=_attachment_facts(mime, name, "inline" if inline else "attachment",
                                        content_id))


# A MIME type as one token, which the parser's get_content_type() returns as it is.
_PLAIN_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _attachment_facts(mime: str, name: str, disposition: str,
                      content_id: str) -> LeafHeaders | None:
    """What parse() reads from an attachment's header block, when the block is plain enough
    to know without parsing it (a token type, a printable ASCII name that needs no escape or
    decoding); None leaves it to leaf_headers()."""
    name = " ".join(name.split())
    if not (_PLAIN_TYPE.fullmatch(mime) and name.isascii() and name.isprintable()
            and not any(c in name for c in '"\\;') and "=?" not in name
            and (not content_id.isascii() or content_id.isprintable())):
        return None
    return LeafHeaders(mime, None, name, disposition)


def _is_message_text(data: bytes) -> bool:
    return b"\x00" not in data and all(len(line) <= 998 for line in data.split(b"\n"))


def _param(name: str, value: str) -> str:
    """A MIME parameter: quoted ASCII, or RFC 2231 UTF-8 (plus an RFC 2047 copy for old
    clients that only read 'name=')."""
    value = " ".join(value.split())
    if value.isascii():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{name}="{escaped}"'
    if name == "name":
        return f'{name}="{Header(value, "utf-8").encode()}"'
    return f"{name}*={encode_rfc2231(value, 'utf-8')}"


def _base64(data: bytes) -> bytes:
    """Base64 in 76-character CRLF lines (faster than base64.encodebytes' 57-byte loop)."""
    encoded = base64.b64encode(data)
    if not encoded:
        return b""
    return _CRLF.join([encoded[i:i + 76] for i in range(0, len(encoded), 76)]) + _CRLF
