"""Turning bytes in a declared (often wrong) charset into text, and RFC 2047 words into text."""

from __future__ import annotations

import codecs
import re
from contextlib import suppress
from email.errors import HeaderParseError
from email.header import decode_header
from functools import lru_cache

# Names seen in real mail that Python's codec registry does not know, or knows as something
# narrower than what mail clients actually send under that name.
_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "euc-kr": "cp949",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-roman": "mac_roman",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso8859_8",
    "x-user-defined": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
# A codec fails in its own way on bytes it cannot take: UnicodeError (punycode, idna),
# ValueError, IndexError (a truncated multi-byte sequence in some codecs).
_CODEC_ERRORS = (ValueError, LookupError, IndexError)


@lru_cache(maxsize=256)
def codec_for(charset: str | None) -> str | None:
    """The Python codec for a MIME charset name, or None when it is unknown."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = _ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
        # Only text encodings: a label naming base64, zlib or rot13 is not a charset.
        b"".decode(codec)
    except (LookupError, ValueError):  # unknown, not a text encoding, a NUL in the name
        return None
    return codec


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode bytes as the declared charset, falling back to UTF-8 then cp1252.

    Returns the text and whether the declared charset was missing, unknown or wrong.
    """
    codec = codec_for(charset)
    if codec is not None:
        with suppress(*_CODEC_ERRORS):
            return data.decode(codec), False
    with suppress(UnicodeDecodeError):
        return data.decode("utf-8"), codec is None and charset is not None
    if codec is not None:
        with suppress(*_CODEC_ERRORS):
            return data.decode(codec, errors="replace"), True
    return data.decode("cp1252", errors="replace"), True


def header_text(value: str | None) -> str:
    """Decode a header value read with the compat32 policy to clean text.

    Handles raw 8-bit UTF-8 (RFC 6532, carried as surrogate escapes), legacy 8-bit charsets,
    and RFC 2047 encoded words, including the common malformed ones (inside quotes, adjacent
    words split mid-character).
    """
    if not value:
        return ""
    if not value.isascii():
        # Real characters become UTF-8, surrogate escapes become the raw bytes they stood for.
        raw = value.encode("utf-8", "surrogateescape")
        value, _ = decode_bytes(raw, "utf-8")
    if "=?" in value:
        value = _decode_words(value)
    return _WS.sub(" ", value).strip()


_WS = re.compile(r"\s+")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _decode_words(value: str, glued: bool = True) -> str:
    """RFC 2047 words of ``value`` decoded; ``glued``: also try each word standing alone
    (once: a word decode_header leaves alone on its own stays as it is)."""
    try:
        parts = decode_header(value)
    except (ValueError, AssertionError, HeaderParseError):
        parts = [(value, None)]
    if glued and len(parts) == 1 and isinstance(parts[0][0], str) \
            and _ENCODED_WORD.search(value):
        # Words glued to other text or inside quotes are left alone by decode_header.
        return _ENCODED_WORD.sub(
            lambda m: _decode_words(" " + m.group(0) + " ", glued=False).strip(), value)
    # Adjacent encoded words in the same charset are joined before decoding, so a multi-byte
    # character split across two words comes out whole.
    merged: list[tuple[bytes | str, str | None]] = []
    for chunk, charset in parts:
        if merged and isinstance(chunk, bytes) and merged[-1][1] == charset and isinstance(
            merged[-1][0], bytes
        ):
            merged[-1] = (merged[-1][0] + chunk, charset)
        else:
            merged.append((chunk, charset))
    out = []
    for chunk, charset in merged:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(decode_bytes(chunk, charset)[0])
    return "".join(out)
