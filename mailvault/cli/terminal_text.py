"""Text from mail, files and servers made safe to print on a terminal, and cut to fit a cell.

Mail is written by strangers. An ESC in a Subject would reach the terminal as an escape
sequence (colours, a new window title, a cleared screen, on some terminals worse); a NUL, a
carriage return or a bidi override hides or reorders what a person reads; a lone surrogate
(a byte that was not UTF-8, kept by ``surrogateescape``) cannot even be encoded. Every command
that prints such text passes it through ``line``, ``block`` or ``cell``: those characters are
shown as escapes (``\\x1b``, ``\\x00``, ``\\u202e``), everything else as it is. ``--json``
stays exact: ``json_text`` writes the same characters as JSON escapes, which a JSON reader
turns back into the very same string.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.text import Text

# C1 controls, DEL, bidi embeddings/overrides/isolates and marks, line and paragraph
# separators, lone surrogates: shown escaped everywhere, JSON included.
_INVISIBLE = "\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
# C0 controls but tab and line feed: a block of text (a body) keeps its lines.
_UNSAFE_IN_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f{_INVISIBLE}]")
# ... and a line keeps nothing that would start another.
_UNSAFE_IN_LINE = re.compile(f"[\x00-\x08\x0a-\x1f{_INVISIBLE}]")
_UNSAFE_IN_JSON = re.compile(f"[{_INVISIBLE}]")
# The widest a table cell is drawn (terminal columns); the whole text stays in --json and
# `show`. Rich measures and folds all of a cell's text: a subject of 30 MB kept `search`
# from printing its table for over 100 s.
CELL_WIDTH = 200
ELLIPSIS = "…"


def line(text: str) -> str:
    """``text`` for one line of a terminal: every control character escaped, tab aside."""
    return _UNSAFE_IN_LINE.sub(_escape, text)


def block(text: str) -> str:
    """``text`` over several lines (a message body): line feeds and tabs kept, CRLF read as a
    line feed, every other control character escaped (a lone CR would let a later line
    overwrite an earlier one)."""
    return _UNSAFE_IN_BLOCK.sub(_escape, text.replace("\r\n", "\n"))


def cell(text: str, width: int = CELL_WIDTH) -> Text:
    """``text`` for a table cell: made safe like ``line`` and cut to ``width`` terminal
    columns, ending in an ellipsis when cut. A Text, so Rich takes it as it is, never as
    markup ("[sqlite-dev] ..." shows as written)."""
    shown = Text(line(text[:width]))
    if len(text) > width or cell_len(shown.plain) > width:
        shown.truncate(width - len(ELLIPSIS))
        shown.append(ELLIPSIS)
    return shown


def json_text(text: str) -> str:
    """A JSON document with the characters ``line`` escapes that JSON does not (C1 controls,
    DEL, bidi controls, separators, lone surrogates) written as ``\\uXXXX``. They can only
    stand inside JSON strings, so the document means exactly what it meant."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a byte that was not UTF-8, as fsnames.shown says
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
