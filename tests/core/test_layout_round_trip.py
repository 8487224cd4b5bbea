"""Attachment single-instance storage rebuilds every message byte for byte: whatever the
bytes (well-formed MIME, nested, broken boundaries, CRLF, no MIME at all), joining the
skeleton and the parts cut out of a message gives back exactly that message."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailvault.store import layout
from tests.support import Attachment, build_message

PIECES = st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=\"b1\"\n", b"Content-Type: multipart/alternative;"
    b"\r\n boundary=b2\r\n", b"Content-Type: message/rfc822\n", b"Content-Type: text/plain\n",
    b"Content-Type: application/octet-stream\r\n", b"\n", b"\r\n", b"--b1\n", b"--b1--\n",
    b"--b2\r\n", b"--b2--\r\n", b"--b1", b"attachment body line ABCDEFGHIJKLMNOP\n",
    b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n", b"Subject: x\n", b"From: a@example.org\n",
])


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(PIECES, max_size=60), min_part=st.integers(min_value=1, max_value=64))
def test_join_of_split_is_the_message(pieces: list[bytes], min_part: int) -> None:
    raw = b"".join(pieces)
    cut = layout.split(raw, min_part)
    stored = {part.sha256: part.data for part in cut.parts}
    assert layout.part_hashes(cut.skeleton) == [part.sha256 for part in cut.parts]
    assert layout.join(cut.skeleton, stored.__getitem__) == raw


def test_a_large_attachment_is_cut_out() -> None:
    raw = build_message(attachments=[Attachment("a.bin", bytes(range(256)) * 64)])
    cut = layout.split(raw, 8192)
    assert len(cut.parts) == 1
    assert cut.parts[0].data in raw and len(cut.parts[0].data) > 16384
    assert cut.parts[0].data not in cut.skeleton
    assert layout.join(cut.skeleton, lambda _digest: cut.parts[0].data) == raw
