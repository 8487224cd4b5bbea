"""Outlook's RTF bodies: compressed RTF ([MS-OXRTFCP]) and HTML or text encapsulated in RTF.

Outlook often stores only an RTF body. When that RTF was made from HTML (``\\fromhtml1``) or
from plain text (``\\fromtext``), the original is recovered by the de-encapsulation algorithm
of [MS-OXRTFEX] 2.1.3: HTML comes from the ``{\\*\\htmltag ...}`` groups and from text that is
not suppressed by ``\\htmlrtf``. Otherwise the RTF itself is the rich body and goes into the
message as ``text/rtf``. One linear pass over the tokens (general RTF parsers take seconds).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from mailvault.outlook.properties import codec_for_codepage

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # control word with optional number
    rb"|\\'([0-9a-fA-F]{2})"  # a byte in the document's code page
    rb"|\\(.)"  # control symbol
    rb"|([{}])"  # group
    rb"|[\r\n]+"  # line breaks in the RTF source are not text
    rb"|([^\\{}\r\n]+)", re.S)  # text
# Destinations whose text is never part of the body (tables, metadata, pictures).
_SKIPPED_DESTINATIONS = {
    b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"object", b"header",
    b"footer", b"themedata", b"colorschememapping", b"latentstyles", b"datastore",
    b"xmlnstbl", b"listtable", b"listoverridetable", b"rsidtbl", b"generator", b"mmathPr",
    b"fldinst", b"mhtmltag", b"filetbl", b"revtbl", b"pgdsctbl", b"wgrffmtfilter",
}
_SYMBOLS = {b"par": "\r\n", b"line": "\r\n", b"tab": "\t", b"lquote": "\u2018",
            b"rquote": "\u2019", b"ldblquote": "\u201c", b"rdblquote": "\u201d",
            b"bullet": "\u2022", b"endash": "\u2013", b"emdash": "\u2014", b"emspace": "\u2003",
            b"enspace": "\u2002", b"~": "\u00a0", b"-": "", b"_": "\u2011"}
_PROBE = 4096
_FONT_TABLE_PROBE = 65536
_FONT = re.compile(rb"\{\\f(\d+)(?:\\[a-z]+-?\d* ?)*?\\fcharset(\d+)")
# \fcharsetN -> Windows code page ([MS-RTF] fcharset); 0 and 1 mean the document's own.
_CHARSETS = {2: 1252, 77: 10000, 128: 932, 129: 949, 130: 1361, 134: 936, 136: 950, 161: 1253,
             162: 1254, 163: 1258, 177: 1255, 178: 1256, 186: 1257, 204: 1251, 222: 874,
             238: 1250, 255: 437}


@dataclass(frozen=True)
class RtfBody:
    """What an RTF body holds: the RTF itself and, if it wraps one, the HTML or text."""

    rtf: bytes
    html: str | None = None
    text: str | None = None


# [MS-OXRTFCP] 2.1.3.1: the dictionary starts with this text; the rest of it is spaces.
_INITIAL = (rb"{\rtf1\ansi\mac\deff0\deftab720{\fonttbl;}{\f0\fnil \froman \fswiss "
            rb"\fmodern \fscript \fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
            rb"{\colortbl\red0\green0\blue0" b"\r\n" rb"\par \pard\plain\f0\fs20\b\i\u\tab\tx")
_COMPRESSED = b"LZFu"
_UNCOMPRESSED = b"MELA"
_WINDOW = 4096


def decompress(data: bytes) -> bytes | None:
    """The RTF inside PR_RTF_COMPRESSED ([MS-OXRTFCP] LZ77), or None when it is not one.

    The output is kept after the initial dictionary text in one buffer, so the dictionary
    position of every byte is its index modulo 4096 and a reference is a slice copy. The
    CRC is not checked: a damaged body is still decoded as far as it goes.
    """
    if len(data) < 16:
        return None
    size, raw_size, kind = struct.unpack_from("<II4s", data)
    body = data[16:4 + size]
    if kind == _UNCOMPRESSED:
        return body[:raw_size]
    if kind != _COMPRESSED:
        return None
    out = bytearray(_INITIAL)
    at, end = 0, len(body)
    while at < end:
        control = body[at]
        at += 1
        if control == 0 and at + 8 <= end:
            out += body[at:at + 8]  # eight literal bytes, the common case in text
            at += 8
            continue
        for bit in range(8):
            if at >= end:
                break
            if not control & (1 << bit):
                out.append(body[at])
                at += 1
                continue
            if at + 2 > end:
                at = end
                break
            token = (body[at] << 8) | body[at + 1]
            at += 2
            offset, length = token >> 4, (token & 0xF) + 2
            current = len(out)
            if offset == current % _WINDOW:
                return bytes(out[len(_INITIAL):])  # the end marker
            start = current - 1 - ((current - 1 - offset) % _WINDOW)
            if start >= 0 and start + length <= current:
                out += out[start:start + length]
            else:  # overlapping the bytes it writes, or the never-written (space) part
                for k in range(length):
                    out.append(out[start + k] if start + k >= 0 else 0x20)
    return bytes(out[len(_INITIAL):])


def read_rtf(compressed: bytes) -> RtfBody | None:
    """Decompress an RTF body and recover the HTML or text it encapsulates."""
    rtf = decompress(compressed)
    if not rtf:
        return None
    head = rtf[:_PROBE]
    if b"\\fromhtml" in head:
        return RtfBody(rtf, html=deencapsulate(rtf, html=True))
    if b"\\fromtext" in head:
        return RtfBody(rtf, text=deencapsulate(rtf, html=False))
    return RtfBody(rtf)


@dataclass
class _Group:
    suppressed: bool = False  # inside \htmlrtf (RTF-only content)
    in_tag: bool = False  # inside {\*\htmltag ...}
    skipped: bool = False  # inside a destination that is never output
    skip_unicode: int = 1  # \ucN: characters that follow \uN as its fallback
    codec: str = "cp1252"  # of the current font (\fN and its \fcharset)


def deencapsulate(rtf: bytes, *, html: bool) -> str:
    """The HTML (or text) an encapsulating RTF document was made from ([MS-OXRTFEX] 2.1.3)."""
    default = _codec(rtf)
    fonts = _font_codecs(rtf, default)
    out: list[str] = []
    pending = bytearray()  # \'hh bytes, decoded together so multi-byte characters hold
    pending_codec = default
    stack: list[_Group] = []
    group = _Group(codec=default)
    starting = False  # right after '{': the first control word may name a destination
    fallback = 0  # characters still to skip after a \uN

    def flush() -> None:
        if pending:
            out.append(bytes(pending).decode(pending_codec, "replace"))
            pending.clear()

    def visible() -> bool:
        if group.skipped:
            return False
        if group.in_tag:
            return html
        return not group.suppressed

    for match in _TOKEN.finditer(rtf):
        word, number, hexbyte, symbol, brace, text = match.groups()
        first = starting
        starting = False
        if hexbyte is not None:
            if fallback:
                fallback -= 1
            elif visible():
                if pending and pending_codec != group.codec:
                    flush()
                pending_codec = group.codec
                pending.append(int(hexbyte, 16))
            continue
        flush()
        if brace is not None:
            if brace == b"{":
                stack.append(group)
                group = _Group(group.suppressed, group.in_tag, group.skipped, group.skip_unicode,
                               group.codec)
                starting = True
            elif stack:
                group = stack.pop()
            fallback = 0
            continue
        if word is not None:
            if fallback:
                fallback -= 1
                continue
            _control(word, number, first, group, html)
            if word == b"f" and number is not None:
                group.codec = fonts.get(int(number), default)
            if word == b"u" and number is not None and visible():
                out.append(chr(int(number) % 65536))
                fallback = group.skip_unicode
            elif visible() and word in _SYMBOLS:
                out.append(_SYMBOLS[word])
            continue
        if symbol is not None:
            if symbol == b"*":
                starting = first  # {\*\destination: the word after the star decides
                continue
            if fallback:
                fallback -= 1
                continue
            if visible():
                literal = symbol.decode("latin-1")
                out.append(_SYMBOLS.get(symbol, literal if literal in "\\{}" else ""))
            continue
        if text is not None and visible():
            if fallback:
                skip = min(fallback, len(text))
                fallback -= skip
                text = text[skip:]
            out.append(text.decode(group.codec, "replace"))
    flush()
    return "".join(out)


def _control(word: bytes, number: bytes | None, first: bool, group: _Group, html: bool) -> None:
    """Apply a control word to the group state."""
    if first and word in _SKIPPED_DESTINATIONS:
        group.skipped = True
    elif first and word == b"htmltag":
        group.in_tag = True
        group.suppressed = False
        group.skipped = group.skipped or not html
    elif word == b"htmlrtf":
        group.suppressed = number != b"0"
    elif word == b"uc" and number is not None:
        group.skip_unicode = int(number)


def _font_codecs(rtf: bytes, default: str) -> dict[int, str]:
    """Font number -> codec of its \\fcharset, for the fonts of the font table."""
    codecs: dict[int, str] = {}
    for match in _FONT.finditer(rtf, 0, min(len(rtf), _FONT_TABLE_PROBE)):
        codepage = _CHARSETS.get(int(match.group(2)))
        codec = codec_for_codepage(codepage) if codepage else None
        codecs[int(match.group(1))] = codec or default
    return codecs


def _codec(rtf: bytes) -> str:
    match = re.search(rb"\\ansicpg(\d+)", rtf[:_PROBE])
    codec = codec_for_codepage(int(match.group(1))) if match else None
    return codec or "cp1252"
