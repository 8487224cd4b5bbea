"""Outlook's RTF bodies: compressed RTF ([MS-OXRTFCP]) and HTML or text encapsulated in RTF.

Outlook often stores only an RTF body. When that RTF was made from HTML (``\\fromhtml1``) or
from plain text (``\\fromtext``), the original is recovered ([MS-OXRTFEX]); otherwise the RTF
itself is the rich body and goes into the message as ``text/rtf``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import compressed_rtf
from RTFDE.deencapsulate import DeEncapsulator

# RTFDE logs every parse step at INFO/DEBUG and problems at WARNING; a bad body is our
# defect to note, not a log line per message.
for _name in ("RTFDE", "RTFDE.text_extraction", "RTFDE.grammar", "RTFDE.HTMLParsing"):
    logging.getLogger(_name).setLevel(logging.ERROR)

_ENCAPSULATION_PROBE = 4096


@dataclass(frozen=True)
class RtfBody:
    """What an RTF body holds: the RTF itself and, if it wraps one, the HTML or text."""

    rtf: bytes
    html: str | None = None
    text: str | None = None


def decompress(data: bytes) -> bytes | None:
    """The RTF inside PR_RTF_COMPRESSED, or None when it is damaged."""
    try:
        result: bytes = compressed_rtf.decompress(data)
    except Exception:  # the library raises bare Exception on bad input
        return None
    return result


def read_rtf(compressed: bytes) -> RtfBody | None:
    """Decompress an RTF body and recover the HTML or text it encapsulates."""
    rtf = decompress(compressed)
    if not rtf:
        return None
    head = rtf[:_ENCAPSULATION_PROBE]
    if b"\\fromhtml" not in head and b"\\fromtext" not in head:
        return RtfBody(rtf)
    try:
        decoder = DeEncapsulator(rtf)
        decoder.deencapsulate()
    except Exception:  # RTFDE and its parser (lark) raise many unrelated types on bad RTF
        return RtfBody(rtf)
    if decoder.content_type == "html" and decoder.html:
        html = decoder.html
        return RtfBody(rtf, html=html if isinstance(html, str) else html.decode("utf-8", "replace"))
    if decoder.content_type == "text" and decoder.text:
        text = decoder.text
        return RtfBody(rtf, text=text if isinstance(text, str) else text.decode("utf-8", "replace"))
    return RtfBody(rtf)
