"""The milter spoken to by a script (the protocol as Sendmail's libmilter documents it): replies
for every step when the MTA cannot do without them, abort, several messages per connection."""

from __future__ import annotations

import base64
import json
import socket
import struct
from collections.abc import Callable

from pytest import MonkeyPatch
from sqlalchemy import select

from mailvault.capture.milter import TEMPFAIL_REPLY, header_line
from mailvault.capture.spool import Position, Spool
from mailvault.records import Provenance
from mailvault.store import catalog, schema
from mailvault.vault import Vault
from tests.capture.conftest import Running, message_count, wait_until
from tests.support import stored_provenance


class ScriptedMTA:
    """An MTA side of the milter protocol over a real socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, command: bytes, data: bytes = b"") -> None:
        self.sock.sendall(struct.pack(">I", len(data) + 1) + command + data)

    def reply(self) -> tuple[bytes, bytes]:
        (length,) = struct.unpack(">I", self._exactly(4))
        body = self._exactly(length)
        return body[:1], body[1:]

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            assert chunk, "the milter hung up"
            data += chunk
        return data

    def step(self, command: bytes, data: bytes = b"") -> bytes:
        self.send(command, data)
        return self.reply()[0]


def message(mta: ScriptedMTA, sender: bytes, recipients: list[bytes],
            headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    mta.send(b"D", b"M" + b"i\0QUEUE42\0")
    assert mta.step(b"M", b"<" + sender + b">\0SIZE=100\0") == b"c"
    for rcpt in recipients:
        assert mta.step(b"R", b"<" + rcpt + b">\0") == b"c"
    assert mta.step(b"T") == b"c"
    for name, value in headers:
        assert mta.step(b"L", name + b"\0" + value + b"\0") == b"c"
    assert mta.step(b"N") == b"c"
    assert mta.step(b"B", body) == b"c"


def test_scripted_conversation_without_no_reply_flags(
        vault: Vault, serving: Callable[..., Running]) -> None:
    running = serving({"smtp": [], "milter": ["127.0.0.1:0"]})
    mta = ScriptedMTA(running.port("milter"))
    mta.send(b"O", struct.pack(">III", 6, 0x1FF, 0))  # offers no protocol options at all
    command, data = mta.reply()
    assert command == b"O" and struct.unpack(">III", data[:12]) == (6, 0, 0)
    assert mta.step(b"C", b"mx.example.org\x004\x00\x19192.0.2.7\0") == b"c"
    assert mta.step(b"H", b"mx.example.org\0") == b"c"
    headers = [(b"From", b"alice@example.org"), (b"Subject", b"first\n\tfolded")]
    message(mta, b"alice@example.org", [b"bob@example.org"], headers, b"aborted\r\n")
    mta.send(b"A")  # the MTA gave up on that one
    message(mta, b"carol@example.org", [b"dan@example.org", b"eve@example.org"], headers,
            b"kept\r\n")
    assert mta.step(b"E") == b"c"
    mta.send(b"Q")
    mta.sock.close()
    wait_until(lambda: message_count(vault) == 1)
    with vault.engine.connect() as conn:
        (row,) = catalog.messages_by_id(conn, [catalog.max_message_id(conn)])
        (data_text,) = conn.execute(select(schema.provenance.c.data)).scalars().all()
    assert vault.read_raw(row) == (b"From: alice@example.org\r\nSubject: first\r\n\tfolded\r\n"
                                   b"\r\nkept\r\n")
    prov = stored_provenance(data_text)
    assert prov["envelope_from"] == "carol@example.org"
    assert prov["envelope_to"] == ["dan@example.org", "eve@example.org"]
    assert prov["client_address"] == "192.0.2.7" and prov["client_name"] == "mx.example.org"
    assert prov["extra"] == {"queue_id": "QUEUE42"}


def test_header_lines_keep_their_leading_space_when_negotiated() -> None:
    assert header_line(b"To", b"  x@example.org", leading_space=True) == b"To:  x@example.org\r\n"
    assert header_line(b"To", b"x@example.org", leading_space=False) == b"To: x@example.org\r\n"


def test_envelope_bytes_that_are_not_utf8_are_archived_with_the_bytes(
        vault: Vault, serving: Callable[..., Running]) -> None:
    running = serving({"smtp": [], "milter": ["127.0.0.1:0"]})
    mta = ScriptedMTA(running.port("milter"))
    mta.send(b"O", struct.pack(">III", 6, 0x1FF, 0))
    mta.reply()
    assert mta.step(b"C", b"mx\xff.example.org\x004\x00\x19192.0.2.7\0") == b"c"
    assert mta.step(b"H", b"h\xe9st\0") == b"c"
    message(mta, b"\xff\xfe@bad", [b"j\xe9@x.org", b"ok@example.org"],
            [(b"Subject", b"latin-1 envelope")], b"kept\r\n")
    assert mta.step(b"E") == b"c"  # stored: not a hang-up, not a tempfail
    mta.send(b"Q")
    mta.sock.close()
    wait_until(lambda: message_count(vault) == 1)
    with vault.engine.connect() as conn:
        (data_text,) = conn.execute(select(schema.provenance.c.data)).scalars().all()
    prov = stored_provenance(data_text)
    assert prov["envelope_from"] == "\\xff\\xfe@bad"
    assert prov["envelope_to"] == ["j\\xe9@x.org", "ok@example.org"]
    assert prov["helo"] == "h\\xe9st" and prov["client_name"] == "mx\\xff.example.org"
    extra = prov["extra"]
    assert base64.b64decode(extra["envelope_from_bytes"]) == b"\xff\xfe@bad"
    assert [base64.b64decode(b) for b in json.loads(extra["envelope_to_bytes"])] == [
        b"j\xe9@x.org", b"ok@example.org"]
    assert base64.b64decode(extra["helo_bytes"]) == b"h\xe9st"
    assert base64.b64decode(extra["client_name_bytes"]) == b"mx\xff.example.org"


def test_a_fault_of_ours_is_a_tempfail_counted_as_an_internal_error(
        vault: Vault, serving: Callable[..., Running], monkeypatch: MonkeyPatch) -> None:
    async def failing(spool: Spool, raw: bytes, provenance: Provenance) -> Position:
        raise RuntimeError("the disk controller is on fire")

    monkeypatch.setattr(Spool, "store", failing)
    running = serving({"smtp": [], "milter": ["127.0.0.1:0"]})
    mta = ScriptedMTA(running.port("milter"))
    mta.send(b"O", struct.pack(">III", 6, 0x1FF, 0))
    mta.reply()
    message(mta, b"a@example.org", [b"b@example.org"], [(b"Subject", b"x")], b"x\r\n")
    mta.send(b"E")
    assert mta.reply() == (b"y", TEMPFAIL_REPLY)  # the MTA keeps it and retries
    mta.send(b"Q")
    mta.sock.close()
    running.stop()
    status = json.loads((vault.path / "serve-status.json").read_text())
    assert status["internal_errors"] == 1 and status["refused"] == {"internal error": 1}
    assert status["last_error"]["error"] == ("the milter failed: RuntimeError: the disk "
                                             "controller is on fire")
