"""The POP3 client against a server that answers anything: replies that are neither +OK nor
-ERR, listings with numbers that are no numbers, sizes in words, lines without an end, the
connection closed mid-listing. The client gives its answer or one SourceError sentence,
never another exception (a real server on 127.0.0.1, scripted per example)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailvault.errors import SourceError
from mailvault.sources.imap import Credentials, Endpoint
from mailvault.sources.pop3 import Pop3Session
from tests.fuzz.profile import fuzz

REPLY = st.sampled_from([b"+OK\r\n", b"+OK fine\r\n", b"-ERR no\r\n", b"+ok\r\n", b"\r\n",
                         b"OK\r\n", b"+OK", b"-ERR " + b"x" * 9000 + b"\r\n", b"+OK\n",
                         b"\xff\xfe\r\n"])
LISTING_LINE = st.one_of(
    st.sampled_from([b"1 uid-1\r\n", b"2 uid-2\r\n", b"1 120\r\n", b"x y\r\n", b"\r\n",
                     b"1\r\n", b"-1 a\r\n", b"99999999999999999999999 a\r\n", b"1 1e9\r\n",
                     b"1 \xff\r\n", b"..\r\n", b" 1 a\r\n", b"1 a b c\r\n", b"\x00\r\n",
                     b"\xd9\xa1 x\r\n"]),
    st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"") + b"\r\n"))
MULTILINE = st.tuples(REPLY, st.lists(LISTING_LINE, max_size=6),
                      st.sampled_from([b".\r\n", b".\r\n", b"\x04", b".\n", b"..\r\n.\r\n"]))


class Script:
    """What the server answers next: a reply per verb (the greeting under '')."""

    def __init__(self) -> None:
        self.replies: dict[bytes, bytes] = {}


class _Handler(socketserver.StreamRequestHandler):
    script: Script

    def handle(self) -> None:
        replies = self.script.replies
        # A reply that does not end its line is the server's last: it hangs up after it
        # (the client's own time-out is not what this test is about).
        self.wfile.write(replies.get(b"", b"+OK ready\r\n"))
        if not replies.get(b"", b"\n").endswith(b"\n"):
            return
        for line in self.rfile:
            verb = line.split(b" ", 1)[0].strip().upper()
            reply = replies.get(verb, b"+OK\r\n")
            self.wfile.write(reply)
            if verb == b"QUIT" or not reply.endswith(b"\n"):
                return


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, Script]]:
    script = Script()
    handler = type("Handler", (_Handler,), {"script": script})
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as running:
        running.daemon_threads = True
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        try:
            yield running.server_address[1], script
        finally:
            running.shutdown()


def _multiline(parts: tuple[bytes, list[bytes], bytes]) -> bytes:
    first, lines, end = parts
    return first + b"".join(lines) + end


@fuzz(30, budget_s=None)
@given(greeting=REPLY, login=REPLY, uidl=MULTILINE, listing=MULTILINE, retr=MULTILINE)
def test_any_server_answers_give_a_result_or_one_source_error(
        server: tuple[int, Script], greeting: bytes, login: bytes,
        uidl: tuple[bytes, list[bytes], bytes], listing: tuple[bytes, list[bytes], bytes],
        retr: tuple[bytes, list[bytes], bytes]) -> None:
    port, script = server
    script.replies = {b"": greeting, b"USER": login, b"PASS": login,
                      b"UIDL": _multiline(uidl), b"LIST": _multiline(listing),
                      b"RETR": _multiline(retr)}
    endpoint = Endpoint("127.0.0.1", port, "none", timeout_s=0.2)
    try:
        session = Pop3Session(endpoint, Credentials("user", "secret"))
    except SourceError as exc:
        assert str(exc).endswith(".")
        return
    try:
        for listed in session.listing():
            assert listed.size >= 0
            session.retrieve(listed.number)
        session.quit()
    except SourceError as exc:
        assert str(exc).endswith(".") and "secret" not in str(exc)
    finally:
        session.close()


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("pop3-*.txt")), ids=lambda p: p.name)
def test_a_listing_crasher_is_one_source_error(server: tuple[int, Script], path: Path) -> None:
    """Crashers found: a UIDL or LIST answer whose lines are no number and value (ValueError
    from int() before). The listing-dot-line file is the UIDL answer, and its LIST answer
    has a lone '.' line doubled into '..' (a listing line '.' after unstuffing)."""
    port, script = server
    answer = path.read_bytes()
    script.replies = {b"UIDL": answer, b"LIST": answer}
    if path.name == "pop3-listing-dot-line.txt":
        script.replies[b"LIST"] = b"+OK\r\n1 10\r\n..\r\n.\r\n"
    session = Pop3Session(Endpoint("127.0.0.1", port, "none", timeout_s=5),
                          Credentials("user", "secret"))
    try:
        with pytest.raises(SourceError, match="does not speak POP3"):
            session.listing()
    finally:
        session.close()
