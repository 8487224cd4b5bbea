"""The SMTP session on a real socket, with a recording handler in place of the spool: the
protocol's corners (pipelining, dot-stuffing, split packets, size limits, command order,
STARTTLS, AUTH exchanges, abuse) that the end-to-end tests do not reach."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailvault.capture.session import Client, SessionOptions, SmtpSession, Transaction
from tests.capture.conftest import Certificate


@dataclass
class Recorder:
    """A session handler that accepts everything but one recipient and one login."""

    delivered: list[tuple[Transaction, bytes, Client]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    sessions: set[SmtpSession] = field(default_factory=set)

    def connected(self, session: SmtpSession) -> str | None:
        self.sessions.add(session)
        return None

    def disconnected(self, session: SmtpSession) -> None:
        self.sessions.discard(session)

    def refused(self, reason: str) -> None:
        self.refusals.append(reason)

    def failed(self, error: str) -> None:
        self.faults.append(error)

    async def sender(self, client: Client, address: str,
                     params: list[tuple[str, str]]) -> str | None:
        return "550 5.7.1 not you" if address == "blocked@example.org" else None

    async def recipient(self, client: Client, address: str) -> str | None:
        return "550 5.7.1 no" if address == "nobody@example.org" else None

    async def login(self, name: str, password: bytes) -> bool:
        return (name, password) == ("journal", b"s3cret")

    async def deliver(self, client: Client, transaction: Transaction, raw: bytes) -> str:
        if b"Subject: explode" in raw:
            raise RuntimeError("a fault in the handler " + raw.decode("latin-1"))
        self.delivered.append((transaction, raw, Client(**vars(client))))
        return "250 2.0.0 OK"


@dataclass
class Server:
    port: int
    handler: Recorder


def _options(**changes: object) -> SessionOptions:
    settings: dict[str, object] = dict(
        hostname="archive.test", size_limit=10_000, timeout_s=10, command_deadline_s=10,
        data_deadline_s=10, max_recipients=100)
    settings.update(changes)
    return SessionOptions(**settings)  # type: ignore[arg-type]


def _serve(options: SessionOptions, send_buffer: int = 0) -> Iterator[Server]:
    """A listener on 127.0.0.1; ``send_buffer`` pins the kernel's send buffer of its
    connections so small that replies wait in the session's transport, as on a slow link."""
    handler = Recorder()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, asyncio.Server] = {}
    listener = socket.socket()
    if send_buffer:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))

    async def start() -> None:
        holder["server"] = await loop.create_server(
            lambda: SmtpSession(handler, options), sock=listener)
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    started.wait(10)
    port = int(holder["server"].sockets[0].getsockname()[1])
    async def stop() -> None:
        holder["server"].close()
        for session in list(handler.sessions):
            session.close()
        while handler.sessions:  # each hang-up reaches connection_lost in a loop turn or two
            await asyncio.sleep(0.01)
        await holder["server"].wait_closed()

    try:
        yield Server(port, handler)
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve(_options())


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    yield from _serve(_options(starttls=context, auth="optional"))


class Talk:
    """A raw SMTP conversation: send bytes, read whole replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")
        assert self.reply().startswith("220 archive.test")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.reader.readline().decode()
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> str:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def talk(server: Server) -> Iterator[Talk]:
    conversation = Talk(server.port)
    yield conversation
    conversation.close()


def test_pipelined_transaction_gets_every_reply_in_order(server: Server, talk: Talk) -> None:
    talk.command("EHLO client.test")
    talk.send(b"MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8\r\n"
              b"RCPT TO:<b@example.org>\r\nRCPT TO:<nobody@example.org>\r\n"
              b"RCPT TO:<c@example.org>\r\nDATA\r\n")
    assert [talk.reply()[:3] for _ in range(5)] == ["250", "250", "550", "250", "354"]
    talk.send(b"Subject: x\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n")
    assert [talk.reply()[:3] for _ in range(3)] == ["250", "250", "250"]
    ((transaction, raw, client),) = server.handler.delivered
    assert transaction == Transaction("a@example.org", ["b@example.org", "c@example.org"])
    assert raw == b"Subject: x\r\n\r\nbody\r\n"
    assert client.helo == "client.test" and client.address == "127.0.0.1"


def test_handler_answers_mail_from_and_its_refusal_opens_no_transaction(
        server: Server, talk: Talk) -> None:
    talk.command("EHLO client.test")
    assert talk.command("MAIL FROM:<blocked@example.org>") == "550 5.7.1 not you"
    assert talk.command("RCPT TO:<b@example.org>").startswith("503")
    assert talk.command("MAIL FROM:<a@example.org>") == "250 2.1.0 OK"


def test_dot_stuffed_lines_and_split_packets_come_back_exact(server: Server,
                                                             talk: Talk) -> None:
    message = (b".leading dot on the first line\r\nSubject: dots\r\n\r\n"
               b".\r\n..\r\n.. two\r\nbare\nline feed\n.not a stuffed line\r\nend\r\n")
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    stuffed = b"." + stuffed if stuffed.startswith(b".") else stuffed
    talk.command("HELO client.test")
    talk.command("MAIL FROM:<>")
    talk.command("RCPT TO:<b@example.org>")
    assert talk.command("DATA").startswith("354")
    wire = stuffed + b".\r\n"
    for start in range(0, len(wire), 7):  # the ending arrives split over packets
        talk.send(wire[start:start + 7])
    assert talk.reply().startswith("250")
    ((transaction, raw, _),) = server.handler.delivered
    assert raw == message and transaction.mail_from == ""


def test_empty_data_and_size_limits(server: Server, talk: Talk) -> None:
    talk.command("EHLO client.test")
    assert talk.command("MAIL FROM:<a@example.org> SIZE=10001").startswith("552 5.3.4")
    talk.command("MAIL FROM:<a@example.org> SIZE=100")
    talk.command("RCPT TO:<b@example.org>")
    talk.command("DATA")
    assert talk.command(".").startswith("250")
    assert server.handler.delivered[0][1] == b""
    talk.command("MAIL FROM:<a@example.org>")
    talk.command("RCPT TO:<b@example.org>")
    talk.command("DATA")
    talk.send(b"x" * 998 + b"\r\n")
    for _ in range(30):  # 30 KB without a SIZE= announcement: read through, then refused
        talk.send(b"y" * 998 + b"\r\n")
    assert talk.command(".").startswith("552 5.3.4")
    assert talk.command("NOOP").startswith("250")  # still in step with the client
    assert len(server.handler.delivered) == 1
    assert "message too big" in server.handler.refusals


def test_commands_out_of_order_and_malformed(server: Server, talk: Talk) -> None:
    assert talk.command("MAIL FROM:<a@example.org>").startswith("503")  # no EHLO yet
    assert talk.command("EHLO").startswith("501")
    talk.command("EHLO client.test")
    assert talk.command("RCPT TO:<b@example.org>").startswith("503")
    assert talk.command("DATA").startswith("503")
    assert talk.command("MAIL TO:<a@example.org>").startswith("501")
    assert talk.command("MAIL FROM:<a@example.org> FOO=1").startswith("555")
    talk.command("MAIL FROM:<a@example.org>")
    assert talk.command("MAIL FROM:<a@example.org>").startswith("503")
    assert talk.command("RCPT TO:<>").startswith("501")
    assert talk.command("DATA").startswith("503")  # no recipient yet
    assert talk.command("BDAT 10").startswith("500")
    assert talk.command("VRFY bob").startswith("252")
    assert talk.command("STARTTLS").startswith("502")  # not offered without a certificate
    assert talk.command("AUTH PLAIN").startswith("502")  # auth is off
    assert talk.command("QUIT").startswith("221")
    assert talk.reader.readline() == b""


def test_an_abusive_client_is_hung_up_on(server: Server, talk: Talk) -> None:
    for _ in range(19):
        assert talk.command("XYZZY").startswith("500")
    assert talk.command("XYZZY").startswith("500")
    assert talk.reply().startswith("421")
    assert talk.reader.readline() == b""


def test_a_fault_in_the_handler_is_a_421_not_a_hang(server: Server, talk: Talk,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    talk.command("EHLO client.test")
    talk.command("MAIL FROM:<a@example.org>")
    talk.command("RCPT TO:<b@example.org>")
    talk.command("DATA")
    # The fault's message carries 9,000 bytes the client sent: reported and logged bounded.
    assert talk.command("Subject: explode\r\n\r\n" + "boom " * 1800 + "\r\n.").startswith(
        "421 4.3.0")
    assert talk.reader.readline() == b""
    ((fault,),) = [server.handler.faults]
    assert fault.startswith("an SMTP session failed: RuntimeError: a fault in the handler")
    assert len(fault) < 400 and not server.handler.delivered
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError" in logged and "boom " * 100 not in logged


def test_quit_ends_a_pipelined_stream_with_one_reply_per_command() -> None:
    # Replies wait in the session's transport (a small send buffer, a client that reads only
    # after writing): nothing may follow the 221.
    for server in _serve(_options(), send_buffer=4096):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            commands = [b"EHLO client.test"] * 1000 + [b"NOOP", b"RSET", b"QUIT"]
            sock.sendall(b"".join(c + b"\r\n" for c in commands))
            stream = b""
            while chunk := sock.recv(1 << 16):
                stream += chunk
        codes = [line[:3] for line in stream.split(b"\r\n")[:-1] if line[3:4] != b"-"]
        assert codes == [b"220"] + [b"250"] * 1002 + [b"221"]


def test_an_over_long_path_gets_501(server: Server, talk: Talk) -> None:
    talk.command("EHLO client.test")
    local = "x" * 245
    assert talk.command(f"MAIL FROM:<{local}@example.org>").startswith("501 5.1.7")
    assert talk.command(f"MAIL FROM:<{local[:242]}@example.org>").startswith("250")  # 256
    assert talk.command(f"RCPT TO:<{local}@example.org>").startswith("501 5.1.3")
    assert talk.command("RCPT TO:<b@example.org>").startswith("250")
    talk.command("DATA")
    assert talk.command("Subject: x\r\n\r\nx\r\n.").startswith("250")
    ((transaction, _, _),) = server.handler.delivered
    assert transaction.rcpt_to == ["b@example.org"]


def test_a_command_line_over_the_limit_gets_500(talk: Talk) -> None:
    talk.command("EHLO client.test")
    reply = talk.command("MAIL FROM:<a@example.org> " + "BODY=8BITMIME " * 200)
    assert reply == "500 5.5.2 Line too long"
    talk.command("MAIL FROM:<a@example.org>")
    talk.send(b"RCPT TO:<" + b"y" * (1 << 20) + b"@example.org>\r\n")
    assert talk.reply() == "500 5.5.2 Line too long"
    assert talk.command("RCPT TO:<b@example.org>").startswith("250")


def test_recipients_beyond_the_limit_get_452() -> None:
    for server in _serve(_options(max_recipients=3)):
        talk = Talk(server.port)
        talk.command("EHLO client.test")
        talk.command("MAIL FROM:<a@example.org>")
        replies = [talk.command(f"RCPT TO:<r{i}@example.org>")[:3] for i in range(5)]
        assert replies == ["250", "250", "250", "452", "452"]
        talk.command("DATA")
        assert talk.command("Subject: x\r\n\r\nx\r\n.").startswith("250")
        talk.close()
        ((transaction, _, _),) = server.handler.delivered
        assert len(transaction.rcpt_to) == 3


def test_starttls_discards_what_was_pipelined_in_clear(tls_server: Server) -> None:
    talk = Talk(tls_server.port)
    ehlo = talk.command("EHLO client.test")
    assert "STARTTLS" in ehlo and "AUTH" not in ehlo
    # A command injected behind STARTTLS in clear text must not run inside the TLS session.
    talk.send(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
    assert talk.reply().startswith("220")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    wrapped = context.wrap_socket(talk.sock, server_hostname="127.0.0.1")
    reader = wrapped.makefile("rb")
    wrapped.sendall(b"MAIL FROM:<a@example.org>\r\n")
    assert reader.readline().startswith(b"503")  # EHLO again first: nothing carried over
    wrapped.sendall(b"EHLO client.test\r\n")
    features = []
    while (line := reader.readline())[3:4] == b"-":
        features.append(line)
    assert line == b"250 HELP\r\n" and b"250-AUTH PLAIN LOGIN\r\n" in features
    assert all(b"STARTTLS" not in f for f in features)
    wrapped.close()


def test_auth_exchanges(tls_server: Server) -> None:
    with smtplib.SMTP("127.0.0.1", tls_server.port, timeout=10) as client:
        client.starttls(context=_trusting())
        client.ehlo()
        code, _ = client.docmd("AUTH", "LOGIN")
        assert code == 334
        code, _ = client.docmd(base64.b64encode(b"journal").decode())
        assert code == 334
        code, _ = client.docmd(base64.b64encode(b"wrong").decode())
        assert code == 535
        code, _ = client.docmd("AUTH", "PLAIN")
        assert code == 334
        assert client.docmd("*")[0] == 501  # cancelled
        assert client.docmd("AUTH", "CRAM-MD5")[0] == 504
        assert client.docmd("AUTH", "PLAIN not-base64!")[0] == 501
        plain = base64.b64encode(b"\0journal\0s3cret").decode()
        assert client.docmd("AUTH", f"PLAIN {plain}")[0] == 235
        assert client.docmd("AUTH", f"PLAIN {plain}")[0] == 503
        client.sendmail("a@example.org", ["b@example.org"], b"Subject: t\r\n\r\nx\r\n")
    ((_, _, client_seen),) = tls_server.handler.delivered
    assert client_seen.user == "journal" and str(client_seen.tls).startswith("TLSv1.")
    assert tls_server.handler.refusals == ["authentication failed"]


def _trusting() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(alphabet=". a\t\u00e9", max_size=6), min_size=1, max_size=8))
def test_any_message_comes_back_exact_through_smtplib(server: Server,
                                                      lines: list[str]) -> None:
    message = "".join(f"{line}\r\n" for line in lines).encode()
    before = len(server.handler.delivered)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.sendmail("a@example.org", ["b@example.org"], message)  # smtplib dot-stuffs
    assert server.handler.delivered[before][1] == message
