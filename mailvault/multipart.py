"""Where the parts of a multipart body lie: delimiter lines found in the raw bytes.

Shared by the parser (``message.py``), which builds the MIME tree from these ranges, and the
store (``store/layout.py``), which cuts large parts out of the same ranges. Delimiters are
found with ``bytes.find`` and checked with one pattern compiled once: the standard library's
parser compiles a new regular expression for every boundary it meets (about 0.15 ms each,
a third of the time to parse a typical multipart message), and a pattern tried at every
position of a large attachment is slower still.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What may follow "--boundary" on a delimiter line (RFC 2046 5.1.1): "--" on the close
# delimiter, then only white space up to the line's end.
_DELIMITER_TAIL = re.compile(rb"(--)?[ \t]*(?:\r?\n|$)")


@dataclass(frozen=True)
class Multipart:
    """The body parts of one multipart body, as (start, end) byte ranges of the raw message.

    A part ends before the line break that precedes the next delimiter, as RFC 2046 says;
    ``closed`` tells whether the close delimiter was found (without it the last part runs to
    the end and is not listed).
    """

    parts: list[tuple[int, int]]
    closed: bool


def split_multipart(raw: bytes, start: int, end: int, boundary: bytes) -> Multipart:
    """The parts between the delimiter lines of ``boundary`` in ``raw[start:end]``."""
    marker = b"--" + boundary
    parts: list[tuple[int, int]] = []
    part_start: int | None = None
    at = raw.find(marker, start, end)
    while at >= 0:
        if at == start or raw[at - 1:at] == b"\n":
            tail = _DELIMITER_TAIL.match(raw, at + len(marker), end)
            if tail is not None:
                # Delimiter lines one straight after another enclose no part (as the standard
                # parser reads RFC 2046's grammar).
                if part_start is not None and at > part_start:
                    parts.append((part_start, _before_line_break(raw, part_start, at)))
                if tail.group(1):
                    return Multipart(parts, closed=True)
                part_start = tail.end()
        at = raw.find(marker, at + 1, end)
    return Multipart(parts, closed=False)


def _before_line_break(raw: bytes, start: int, at: int) -> int:
    """``at`` moved back over the line break that belongs to the delimiter at ``at``."""
    if at - 2 >= start and raw[at - 2:at] == b"\r\n":
        return at - 2
    if at - 1 >= start and raw[at - 1:at] == b"\n":
        return at - 1
    return at
