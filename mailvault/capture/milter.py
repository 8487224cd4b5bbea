"""The milter endpoint: Postfix (``smtpd_milters`` / ``non_smtpd_milters``) or Sendmail hands
over every message it accepts, with the whole envelope (Bcc recipients included).

The milter protocol (version 6): the MTA sends length-prefixed packets, one letter a command;
the filter answers some of them. mailvault negotiates "no reply" for every step but the end of
the message and asks for headers with their leading space, so the message is put back together
byte for byte as the MTA holds it. At end of message the copy is appended to the spool, and the
answer is "continue" only once it is fsynced; if it cannot be stored the answer is a temporary
failure (the MTA keeps the message and retries), or "continue" if ``[milter] on_failure`` is
``accept``; a fault of ours is answered the same way, and counted as an internal error.

What the MTA passes on from the client (addresses, the HELO name, the client's name, macros)
is decoded with ``surrogateescape`` like the SMTP session's input: bytes that are not UTF-8
reach the spool, which records them readable with the exact bytes kept (``client_text.py``).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mailvault.capture.client_text import for_log
from mailvault.capture.listen import parse_listen, show_listen
from mailvault.capture.spool import Spool
from mailvault.capture.status import CaptureStatus
from mailvault.errors import ConfigError, StoreError
from mailvault.records import Provenance

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext

VERSION = 6
# Commands (MTA -> filter).
ABORT, BODY, CONNECT, MACRO, END_OF_BODY, HELO = b"A", b"B", b"C", b"D", b"E", b"H"
QUIT_NEW_CONNECTION, HEADER, MAIL, END_OF_HEADERS, NEGOTIATE = b"K", b"L", b"M", b"N", b"O"
QUIT, RCPT, DATA, UNKNOWN = b"Q", b"R", b"T", b"U"
# Replies (filter -> MTA).
CONTINUE, REPLY_CODE = b"c", b"y"
TEMPFAIL_REPLY = b"451 4.3.0 The archive cannot store the message now, try again later\0"
# Protocol flags: the MTA need not wait for an answer to these steps ...
NO_REPLY = {
    HEADER: 0x80, CONNECT: 0x1000, HELO: 0x2000, MAIL: 0x4000, RCPT: 0x8000, DATA: 0x10000,
    UNKNOWN: 0x20000, END_OF_HEADERS: 0x40000, BODY: 0x80000,
}
# ... and header values keep their leading space.
HEADER_LEADING_SPACE = 0x100000
_MAX_PACKET = 64 * 1024 * 1024
_U32 = struct.Struct(">I")
log = logging.getLogger(__name__)


def packet(command: bytes, data: bytes = b"") -> bytes:
    """One milter packet: length, command letter, data."""
    return _U32.pack(len(data) + 1) + command + data


def negotiate_reply(offered_protocol: int) -> tuple[bytes, int]:
    """Our answer to the MTA's negotiation and the protocol flags agreed."""
    wanted = HEADER_LEADING_SPACE
    for flag in NO_REPLY.values():
        wanted |= flag
    agreed = offered_protocol & wanted
    return packet(NEGOTIATE, struct.pack(">III", VERSION, 0, agreed)), agreed


def _strings(data: bytes) -> list[bytes]:
    parts = data.split(b"\0")
    return parts[:-1] if parts and parts[-1] == b"" else parts


def _text(data: bytes) -> str:
    """Bytes from the MTA as text, every byte kept (see the module's docstring)."""
    return data.decode("utf-8", "surrogateescape")


def _address(argument: bytes) -> str:
    return _text(argument).strip().strip("<>")


@dataclass
class MilterMessage:
    """What one milter conversation has told about the current message."""

    envelope_from: str = ""
    recipients: list[str] = field(default_factory=list)
    headers: list[bytes] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    size: int = 0

    def raw(self) -> bytes:
        """Header section, blank line, body: the message as the MTA holds it."""
        return b"".join(self.headers) + b"\r\n" + b"".join(self.body)


def header_line(name: bytes, value: bytes, leading_space: bool) -> bytes:
    """A header field as it stands in the message (the MTA sends folded lines with LF only)."""
    value = value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return name + b":" + (value if leading_space else b" " + value) + b"\r\n"


class MilterConnection:
    """One MTA connection (several messages may pass through it, one after the other)."""

    def __init__(self, endpoint: MilterEndpoint, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.endpoint = endpoint
        self.reader = reader
        self.writer = writer
        self.protocol = 0
        self.macros: dict[str, str] = {}
        self.client_address: str | None = None
        self.client_name: str | None = None
        self.helo: str | None = None
        self.message = MilterMessage()

    async def run(self) -> None:
        """Answer packets until the MTA quits or hangs up."""
        try:
            while True:
                head = await self.reader.readexactly(4)
                (length,) = _U32.unpack(head)
                if not 1 <= length <= _MAX_PACKET:
                    return
                body = await self.reader.readexactly(length)
                if not await self._handle(body[:1], body[1:]):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.writer.close()

    async def _handle(self, command: bytes, data: bytes) -> bool:
        if command == NEGOTIATE:
            if len(data) < 12:
                # Not an MTA speaking the milter protocol: nothing sensible to answer.
                log.warning("milter: a negotiation of %d bytes (12 needed); hanging up.",
                            len(data))
                return False
            _version, _actions, offered = struct.unpack(">III", data[:12])
            reply, self.protocol = negotiate_reply(offered)
            await self._send(reply)
        elif command == MACRO:
            items = _strings(data[1:])
            for name, value in zip(items[::2], items[1::2], strict=False):
                self.macros[name.decode("ascii", "replace").strip("{}")] = _text(value)
        elif command in (QUIT, QUIT_NEW_CONNECTION):
            if command == QUIT:
                return False
            self.macros.clear()
            self.message = MilterMessage()
        elif command == ABORT:
            self.message = MilterMessage()
        elif command == END_OF_BODY:
            if data:
                self.message.body.append(data)
            await self._send(await self.endpoint.deliver(self))
            self.message = MilterMessage()
        else:
            self._record(command, data)
            if command not in NO_REPLY or not self.protocol & NO_REPLY[command]:
                await self._send(packet(CONTINUE))
        return True

    def _record(self, command: bytes, data: bytes) -> None:
        if command == CONNECT:
            name, _, rest = data.partition(b"\0")
            self.client_name = _text(name) or None
            if rest[:1] in (b"4", b"6") and len(rest) >= 3:
                self.client_address = rest[3:].rstrip(b"\0").decode("ascii", "replace")
        elif command == HELO:
            self.helo = _text(data.rstrip(b"\0")) or None
        elif command == MAIL:
            self.message = MilterMessage()
            args = _strings(data)
            self.message.envelope_from = _address(args[0]) if args else ""
        elif command == RCPT:
            args = _strings(data)
            if args:
                self.message.recipients.append(_address(args[0]))
        elif command == HEADER:
            name, _, value = data.partition(b"\0")
            line = header_line(name, value.rstrip(b"\0"),
                               bool(self.protocol & HEADER_LEADING_SPACE))
            self._grow(line, self.message.headers)
        elif command == BODY:
            self._grow(data, self.message.body)

    def _grow(self, chunk: bytes, into: list[bytes]) -> None:
        self.message.size += len(chunk)
        if self.message.size <= self.endpoint.max_bytes:
            into.append(chunk)

    def provenance(self) -> Provenance:
        """The envelope of the current message as the MTA told it."""
        tls = " ".join(v for v in (self.macros.get("tls_version"), self.macros.get("cipher"))
                       if v) or None
        extra = {"queue_id": self.macros["i"]} if self.macros.get("i") else {}
        return Provenance(
            kind="milter", source=self.endpoint.source,
            envelope_from=self.message.envelope_from,
            envelope_to=tuple(self.message.recipients),
            client_address=self.client_address, client_name=self.client_name,
            helo=self.helo, tls=tls, auth_user=self.macros.get("auth_authen") or None,
            received_at=datetime.now(UTC), extra=tuple(sorted(extra.items())))

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class MilterEndpoint:
    """The milter service of ``mailvault serve``."""

    name = "milter"

    def __init__(self, spool: Spool, status: CaptureStatus, listen: list[str],
                 on_failure: str, max_bytes: int) -> None:
        if on_failure not in ("tempfail", "accept"):
            raise ConfigError("[milter] on_failure must be tempfail or accept.")
        self.spool = spool
        self.status = status
        self.listen = listen
        self.on_failure = on_failure
        self.max_bytes = max_bytes
        self.source = ""
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> list[str]:
        """Open the listeners; returns what is listening ('milter 127.0.0.1:8891')."""
        opened = []
        for text in self.listen:
            host, port = parse_listen(text)
            try:
                server = await asyncio.start_server(self._connected, host, port,
                                                    reuse_address=True)
            except OSError as exc:
                raise ConfigError(f"the milter cannot listen on {text}: {exc.strerror}.") \
                    from exc
            bound = server.sockets[0].getsockname()
            address = show_listen(str(bound[0]), int(bound[1]))
            self.source = self.source or address
            self._servers.append(server)
            opened.append(f"milter {address}")
        return opened

    async def _connected(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await MilterConnection(self, reader, writer).run()
        finally:
            self._connections.discard(task)

    async def deliver(self, connection: MilterConnection) -> bytes:
        """Store the finished message; the answer to send at end of message."""
        message = connection.message
        if message.size > self.max_bytes:
            self.status.refused("too large")
            self.status.error(f"a {message.size}-byte message passed the milter unarchived: "
                              "it is over the size limit.")
            return packet(CONTINUE)
        try:
            await self.spool.store(message.raw(), connection.provenance())
        except StoreError as exc:
            self.status.error(str(exc))
            return self._not_stored("spool failed")
        except Exception as exc:
            # A fault of ours: the MTA is answered as for a spool failure, never left waiting.
            error = f"the milter failed: {type(exc).__name__}: {for_log(str(exc))}"
            log.error("%s\n%s", error, "".join(traceback.format_tb(exc.__traceback__)).rstrip())
            self.status.internal_error(error)
            return self._not_stored("internal error")
        self.status.accepted("milter")
        return packet(CONTINUE)

    def _not_stored(self, reason: str) -> bytes:
        """The answer for a message that could not be stored: tempfail, or continue (counted
        as passed unarchived) when ``on_failure`` is ``accept``."""
        if self.on_failure == "accept":
            self.status.refused(f"{reason}, passed unarchived")
            return packet(CONTINUE)
        self.status.refused(reason)
        return packet(REPLY_CODE, TEMPFAIL_REPLY)

    async def stop(self) -> None:
        """Stop listening and end the open conversations."""
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def milter_service(context: ServeContext) -> MilterEndpoint | None:
    """The milter, if it has a listen address (settings or --milter)."""
    settings = context.vault.settings
    listen = context.overrides.get("milter", settings.milter.listen)
    if not listen:
        return None
    limit = min(settings.smtp.max_message_mb, settings.ingest.max_message_mb) * 1024 * 1024
    return MilterEndpoint(context.spool, context.status, listen, settings.milter.on_failure,
                          limit)
