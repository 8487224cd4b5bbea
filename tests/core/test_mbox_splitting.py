"""The mbox splitter against its documented rule, for any messages and any read size.

Messages are written the mboxrd way (a From_ line before each, ``>`` added to every line that
matches ``>*From ``, an empty line after each, in LF or CRLF) and must come back exactly, in
order, however the file is cut into the chunks the splitter reads: separators, quoted lines
and CRLF pairs split across chunk boundaries included.
"""

from __future__ import annotations

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mailvault.ingest.files import split_mbox

_NEEDS_QUOTE = re.compile(rb"^>*From ")

LINES = st.sampled_from([b"Subject: test", b"From a line in the body", b">From quoted once",
                         b">>From quoted twice", b"", b"From", b"From: header-like",
                         b"plain text", b" From indented", b"\r", b"x" * 70])
ENDINGS = st.sampled_from([b"\n", b"\r\n"])
MESSAGE = st.lists(st.tuples(LINES, ENDINGS), min_size=1, max_size=8).map(
    lambda pairs: b"".join(text + end for text, end in pairs))


def mboxrd(messages: list[bytes], separators: list[bytes]) -> bytes:
    out = bytearray()
    for raw, blank in zip(messages, separators, strict=True):
        out += b"From sender@example.org Thu Mar  4 10:30:00 2021" + blank
        for line in raw.splitlines(keepends=True):
            out += b">" + line if _NEEDS_QUOTE.match(line) else line
        out += blank
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(messages=st.lists(MESSAGE, min_size=1, max_size=5), data=st.data(),
       chunk_size=st.integers(min_value=1, max_value=48))
def test_messages_come_back_exactly(messages: list[bytes], data: st.DataObject,
                                    chunk_size: int) -> None:
    separators = data.draw(st.lists(ENDINGS, min_size=len(messages), max_size=len(messages)))
    mbox = mboxrd(messages, separators)
    found = list(split_mbox(io.BytesIO(mbox), chunk_size=chunk_size))
    assert [raw for _start, _end, raw in found] == messages
    assert all(mbox[start:end].startswith(b"From ") for start, end, _raw in found)
