"""The mbox splitter on hostile files: any bytes at all (separators, quoted lines, lone CRs,
NULs, a file cut anywhere) split without an exception, the same way whatever size of chunks
the file is read in, into messages that each start at a separator line within the file."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from mailvault.ingest.files import split_mbox
from tests.fuzz.profile import fuzz

PIECES = st.sampled_from([b"From ", b"From a@b Thu Mar  4 10:30:00 2021", b"\n", b"\r\n",
                          b"\r", b">From ", b">>From x", b"From:", b"Subject: x", b"\x00",
                          b"\xff", b" ", b"body", b"\n\n", b"From\n", b"\nFrom "])
FILES = st.one_of(st.lists(PIECES, max_size=40).map(b"".join), st.binary(max_size=512))


@fuzz(200)
@given(mbox=FILES, chunk_size=st.integers(min_value=1, max_value=64))
def test_any_file_splits_the_same_in_any_chunks(mbox: bytes, chunk_size: int) -> None:
    whole = list(split_mbox(io.BytesIO(mbox)))
    assert list(split_mbox(io.BytesIO(mbox), chunk_size=chunk_size)) == whole
    previous_end = 0
    for start, end, raw in whole:
        assert previous_end <= start < end <= len(mbox)
        assert mbox.startswith(b"From ", start)
        assert isinstance(raw, bytes)
        previous_end = end
