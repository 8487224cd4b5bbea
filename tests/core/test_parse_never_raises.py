"""Parsing never raises (promise 4): whatever the bytes, ``parse`` returns a result, and a
message the parser chokes on is still archived with its defects."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailvault.message import parse
from mailvault.search.extract import Limits, extractor

PIECES = st.sampled_from([
    b"From: =?utf-8?B?w6lsb2lzZQ==?= <e@example.org>\n", b"To: undisclosed-recipients:;\n",
    b"To: \"a, b\" <ab@example.org>, broken@, <>\n", b"Subject: =?x-unknown?Q?=E9t=E9?=\n",
    b"Subject: =?iso-2022-jp?B?GyRCJCIbKEI=?=\n", b"Subject: \xe4\xb8\xad\xe6\x96\x87\n",
    b"Date: Mon, 32 Foo 2001 25:61:61 +9999\n", b"Date: yesterday\n",
    b"Content-Type: multipart/mixed; boundary=\"b\"\n",
    b"Content-Type: text/plain; charset=us-askey\n",
    b"Content-Type: text/html; charset=\"utf-8\"\n", b"Content-Type: message/rfc822\n",
    b"Content-Type: application/pdf; name*=UTF-8''r%C3%A9sum%C3%A9.pdf\n",
    b"Content-Transfer-Encoding: base9000\n", b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n",
    b"Content-Disposition: attachment; filename=\n",
    b"\n", b"\r\n", b"--b\n", b"--b--\n", b"%PDF-1.4 not really\n", b"PK\x03\x04junk\n",
    b"=E9t=E9 =\n", b"SGVsbG8gd29ybGQ=\n", b"<p>caf&eacute; <b>bold</p>\n", b"\x00\xff\xfe\n",
    b"X-Long: " + b"a" * 1200 + b"\n", b" folded continuation\n",
])


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(PIECES, max_size=40))
def test_parse_returns_whatever_the_bytes(pieces: list[bytes]) -> None:
    parsed = parse(b"".join(pieces), extractor(Limits(timeout_s=2)))
    assert isinstance(parsed.body, str) and isinstance(parsed.subject, str)
    assert all(isinstance(d, str) for d in parsed.defects)
