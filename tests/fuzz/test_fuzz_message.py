"""The message parser and the header decoders against hostile bytes: parse never raises and
never hangs (each example has a time budget, Hypothesis's deadline), whatever is thrown at
it: random bytes, real corpus messages with bytes flipped, cut or spliced, and header values
with every kind of encoded word and charset name."""

from __future__ import annotations

import encodings.aliases
from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from mailvault.charsets import decode_bytes, header_text
from mailvault.message import display_headers, parse, parse_addresses, parse_date
from mailvault.search.extract import Limits, extractor
from tests.conftest import CORPUS
from tests.fuzz.profile import fuzz

EXTRACT = extractor(Limits(timeout_s=1))
# Codec names Python knows, text codecs or not (base64, zlib, rot13, idna, punycode ...), and
# names it does not: a charset label is whatever the sender wrote.
CHARSETS = st.one_of(
    st.sampled_from(sorted(set(encodings.aliases.aliases.values())
                           | {"base64", "zlib", "bz2", "hex", "rot13", "idna", "punycode",
                              "uu", "quopri", "unicode_escape", "raw_unicode_escape",
                              "utf-7", "utf-16", "utf-32", "x-unknown", "", '"', "utf-8*en"})),
    st.text(max_size=12))


@cache
def corpus_messages() -> list[bytes]:
    """Up to 120 real messages of the corpus (small ones: the mutations are the point)."""
    found = sorted(p for p in (CORPUS / "eml").rglob("*") if p.is_file())
    return [raw for raw in (p.read_bytes() for p in found) if len(raw) < 64 * 1024][:120]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A corpus message with a few bytes flipped, a piece cut or repeated, or cut short."""
    messages = corpus_messages() or [b"Subject: x\n\nbody\n"]
    raw = bytearray(draw(st.sampled_from(messages)))
    for _ in range(draw(st.integers(0, 6))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        action = draw(st.sampled_from(["flip", "cut", "repeat", "insert", "truncate"]))
        if action == "flip":
            raw[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del raw[at:at + draw(st.integers(1, 200))]
        elif action == "repeat":
            raw[at:at] = raw[at:at + draw(st.integers(1, 200))] * draw(st.integers(1, 50))
        elif action == "insert":
            raw[at:at] = draw(st.sampled_from([
                b"\r", b"\n", b"\x00", b"--", b"\n\n", b"=?", b"?=", b"=\n", b"Content-Type: "
                b"multipart/mixed; boundary=\"\"\n", b"Content-Type: message/rfc822\n\n",
                b"charset=base64", b"charset=idna", b"begin 644 x\n", b"\xff\xfe"]))
        else:
            del raw[at:]
    return bytes(raw)


def _parses(raw: bytes) -> None:
    parsed = parse(raw, EXTRACT, max_text_chars=200_000)
    assert isinstance(parsed.subject, str) and isinstance(parsed.body, str)
    assert len(parsed.body) <= 200_000 + 10_000  # the cap, plus the joining newlines
    assert all(isinstance(d, str) for d in parsed.defects)
    for name, value in display_headers(raw):
        assert isinstance(name, str) and isinstance(value, str)


@fuzz(150)
@given(raw=st.binary(max_size=4096))
def test_any_bytes_parse(raw: bytes) -> None:
    _parses(raw)


@fuzz(200)
@given(raw=mutated())
def test_mutated_real_messages_parse(raw: bytes) -> None:
    _parses(raw)


@st.composite
def encoded_words(draw: st.DrawFn) -> str:
    charset = draw(CHARSETS)
    encoding = draw(st.sampled_from(["Q", "B", "q", "b", "X", ""]))
    payload = draw(st.one_of(st.text(alphabet="=ABCDEFabcdef0123456789_+/?", max_size=20),
                             st.text(max_size=10)))
    return f"=?{charset}?{encoding}?{payload}?="


HEADER_VALUES = st.lists(st.one_of(encoded_words(), st.text(max_size=12),
                                   st.sampled_from([" ", "\"", "<", ">", ",", ";", ":", "@",
                                                    "\r\n ", "\udcff", "\udce9"])),
                         max_size=12).map("".join)


@fuzz(300)
@given(value=HEADER_VALUES)
def test_header_values_decode(value: str) -> None:
    text = header_text(value)
    assert isinstance(text, str)
    text.encode("utf-8")  # clean text: no surrogates left to break an index or a page
    for address in parse_addresses([value]):
        str(address).encode("utf-8")
    parse_date(value)


@fuzz(200)
@given(data=st.binary(max_size=200), charset=st.one_of(st.none(), CHARSETS))
def test_bytes_decode_in_any_declared_charset(data: bytes, charset: str | None) -> None:
    text, _doubtful = decode_bytes(data, charset)
    assert isinstance(text, str)
