"""The MIME tree assembled from delimiter ranges (``message.message_tree``) is the tree the
standard library's parser builds: same headers, types, defects and decoded bodies, part by
part, for every message of the corpus and for arbitrary irregular input."""

from __future__ import annotations

import email
import email.message
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailvault.message import POLICY, message_tree
from tests.core.corpus_reading import corpus_messages
from tests.core.test_parse_never_raises import PIECES

Description = list[tuple[object, ...]]


def describe(msg: email.message.Message) -> Description:
    """Everything the archive reads from a tree, one row per entity, in walk order."""
    rows: Description = []
    for part in msg.walk():
        leaf = not part.is_multipart()
        rows.append((
            part.items(),
            part.get_content_type(),
            part.get_default_type(),
            [type(d).__name__ for d in part.defects],
            part.get_payload(decode=True) if leaf else len(part.get_payload()),
            part.get_filename(),
            part.get_content_charset(),
        ))
    return rows


def standard(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=POLICY)


def test_every_corpus_message_gets_the_standard_tree(corpus: Path) -> None:
    messages = corpus_messages(corpus)
    assert len(messages) > 3000
    assembled = 0
    for expected in messages:
        fast = message_tree(expected.raw)
        assert describe(fast) == describe(standard(expected.raw)), expected.path
        # Only the standard parser sets an epilogue: a multipart without one was assembled
        # from delimiter ranges.
        assembled += fast.is_multipart() and fast.epilogue is None
    assert assembled > 200  # the fast path was exercised, not only the fallback


NESTED = (b"Content-Type: multipart/mixed; boundary=outer\r\n\r\npreamble\r\n--outer\r\n"
          b"Content-Type: multipart/alternative; boundary=\"in ner\"\r\n\r\n--in ner\r\n"
          b"Content-Type: text/plain; charset=utf-8\r\n\r\nplain \xc3\xa9\r\n--in ner\r\n"
          b"Content-Type: text/html\r\n\r\n<p>html</p>\r\n--in ner--\r\n--outer\r\n"
          b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nforwarded\r\n"
          b"--outer\r\n\r\nno headers\r\n--outer\r\n--outer  \r\n"
          b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in digest"
          b"\r\n\r\nx\r\n--d--\r\n--outer--\r\nepilogue\r\n")


def test_nested_multiparts_digests_and_empty_parts() -> None:
    fast = message_tree(NESTED)
    assert fast.epilogue is None  # assembled, not the fallback
    assert describe(fast) == describe(standard(NESTED))
    assert [p.get_content_type() for p in fast.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html",
        "message/rfc822", "text/plain", "text/plain", "multipart/digest",
        "message/rfc822", "text/plain"]


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(PIECES, max_size=40))
def test_irregular_input_gets_the_standard_tree(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert describe(message_tree(raw)) == describe(standard(raw))
