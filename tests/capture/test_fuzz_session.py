"""The SMTP session state machine against any sequence of commands, on a real socket: valid
commands in any order, garbage, over-long lines, NULs and 8-bit bytes, DATA with and without
its end, AUTH exchanges cut short, all pipelined. Whatever is sent, every reply is a
well-formed SMTP reply, the session never faults (no 421 from an exception of ours), and it
answers QUIT by closing (or has hung up on the client already)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.capture.test_session import Server, _options, _serve
from tests.fuzz.profile import fuzz

LINES = st.one_of(
    st.sampled_from([
        b"EHLO client.test", b"HELO client.test", b"EHLO", b"MAIL FROM:<a@example.org>",
        b"MAIL FROM:<>", b"MAIL FROM:<a@example.org> SIZE=99999999999999999999",
        b"MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8", b"MAIL FROM:a@example.org",
        b"MAIL FROM:<@relay:a@example.org>", b"MAIL FROM:<\"q u\"@example.org>",
        b"RCPT TO:<b@example.org>", b"RCPT TO:<nobody@example.org>", b"RCPT TO:<>",
        b"RCPT TO:<" + b"x" * 300 + b"@example.org>", b"DATA", b"BDAT 10 LAST", b"RSET",
        b"NOOP", b"VRFY a", b"EXPN a", b"HELP", b"STARTTLS", b"STARTTLS now",
        b"AUTH PLAIN", b"AUTH PLAIN AGpvdXJuYWwAczNjcmV0", b"AUTH LOGIN", b"AUTH CRAM-MD5",
        b"AUTH PLAIN ====", b"*", b"", b".", b"..", b"Subject: x", b"\x00", b"\xff\xfe",
        b"MAIL", b"RCPT", b"mail from:<a@example.org>", b" EHLO x", b"EHLO\tx",
        b"A" * 3000, b"AUTH PLAIN " + b"A" * 13_000, b"\r", b"QUIT now"]),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
)
END_OF_LINE = st.sampled_from([b"\r\n", b"\n", b"\r\n", b"\r\n"])
# A reply line: three digits, then a space or a hyphen, then text.
REPLY = re.compile(rb"^[2-5][0-9][0-9]([ -].*)?$")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve(_options(auth="optional", timeout_s=5, command_deadline_s=5,
                               data_deadline_s=5))


def _conversation(port: int, data: bytes) -> list[bytes]:
    """Send ``data`` then QUIT; every reply line until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data + b"\r\n.\r\nQUIT\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received.split(b"\r\n")[:-1]


@fuzz(100, budget_s=None)
@given(lines=st.lists(st.tuples(LINES, END_OF_LINE), max_size=25))
def test_any_commands_get_well_formed_replies(server: Server,
                                              lines: list[tuple[bytes, bytes]]) -> None:
    replies = _conversation(server.port, b"".join(line + end for line, end in lines))
    assert replies and replies[0].startswith(b"220 ")
    assert [r for r in replies if not REPLY.match(r)] == []
    assert server.handler.faults == []
    # The conversation ends with QUIT's 221 or with the session hanging up (421, too many
    # errors, or a line too long to be SMTP) -- never with silence.
    assert replies[-1][:3] in (b"221", b"421", b"500"), replies[-3:]
