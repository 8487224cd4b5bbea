"""One SMTP server session (RFC 5321) as an asyncio protocol: commands in, replies out.

The session speaks the protocol: EHLO/HELO, SIZE, 8BITMIME, SMTPUTF8, PIPELINING,
ENHANCEDSTATUSCODES, STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954) and DATA with
dot-unstuffing. What to accept is the ``SessionHandler``'s decision: who may connect, which
recipients, which logins, and what to answer once a message has arrived.

DATA is found by searching the received bytes for ``CRLF . CRLF`` rather than reading line by
line, and one ``bytes.replace`` undoes the dot-stuffing: a 5 KB message costs a few calls, not
one per line. Replies to pipelined commands are written together when the session next waits
for the client.

What a client may hold is bounded: a command line (2,048 octets, AUTH 12,288), a path (256
octets), the recipients of a message (``max_recipients``), and the time a command or a message
may take once begun (``command_deadline_s``, ``data_deadline_s``), besides the silence allowed
(``timeout_s``), so a client that drips a byte at a time cannot keep a session for ever. A
client that does not read its replies is not read from until it does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import time
import traceback
from dataclasses import dataclass, field
from typing import Protocol

from mailvault.accounts.throttle import SigninThrottle
from mailvault.capture.client_text import for_log

# A command line (without its CRLF): RFC 5321 4.5.3.1.4 allows 512 octets and extensions more
# for their parameters; this is Postfix's line_length_limit. AUTH lines may be longer (RFC
# 4954 4: 12,288 octets). Longer lines are read through, not kept, and answered 500.
COMMAND_LINE_LIMIT = 2048
AUTH_LINE_LIMIT = 12_288
# A reverse- or forward-path, angle brackets included (RFC 5321 4.5.3.1.3): 501 above it.
MAX_PATH = 256
# Lines of a message are limited only by the message size; reading stops (until the session
# has caught up) when this much more than the size limit is waiting.
READ_AHEAD = 1 << 20
# A message may take ``data_deadline_s`` plus one second for every this many bytes received.
DATA_DEADLINE_BYTES_PER_S = 1024
# A session is hung up on after this many refused or malformed commands in a row.
MAX_ERRORS = 20
END_OF_DATA = b"\r\n.\r\n"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionOptions:
    """What every session of one listener shares."""

    hostname: str
    size_limit: int
    timeout_s: float  # silence allowed
    command_deadline_s: float  # from a command line's first byte to its end
    data_deadline_s: float  # for a message after 354, plus a second per KiB received
    max_recipients: int
    # The context STARTTLS offers (None: no STARTTLS); an implicit-TLS listener has none,
    # its connections being encrypted from the first byte.
    starttls: ssl.SSLContext | None = None
    require_tls: bool = False
    # "off", "optional" or "required".
    auth: str = "off"
    # Failed logins by client address (None: not counted).
    auth_throttle: SigninThrottle | None = None


@dataclass
class Client:
    """What the session knows of the client: the handler reads it, the session fills it.

    Text the client sent (``helo`` here, the addresses of a ``Transaction``) is decoded with
    ``surrogateescape``: ``text.encode("utf-8", "surrogateescape")`` gives its bytes back.
    """

    address: str
    helo: str | None = None
    tls: str | None = None
    user: str | None = None


@dataclass
class Transaction:
    """One MAIL ... DATA exchange: the envelope, the sender "" for the null sender ``<>``."""

    mail_from: str
    rcpt_to: list[str] = field(default_factory=list)


class SessionHandler(Protocol):
    """The decisions a session asks for; replies are full SMTP reply lines."""

    def connected(self, session: SmtpSession) -> str | None:
        """The refusal to send at connect, or None to greet the client."""

    def disconnected(self, session: SmtpSession) -> None:
        """A session that was admitted has ended."""

    def refused(self, reason: str) -> None:
        """The session refused something itself (counted by reason)."""

    def failed(self, error: str) -> None:
        """A fault of ours ended the session with 421; ``error`` says what (one sentence)."""

    async def sender(self, client: Client, address: str,
                     params: list[tuple[str, str]]) -> str | None:
        """The answer to MAIL FROM (its parameters checked, upper-case names): None accepts
        it with the session's own 250, a 2xx reply accepts it with that reply (a proxy passes
        its provider's on), any other reply refuses it."""

    async def recipient(self, client: Client, address: str) -> str | None:
        """The answer to this RCPT TO address, as for ``sender``: None or a 2xx reply
        accepts it, any other reply refuses it."""

    async def login(self, name: str, password: bytes) -> bool | str:
        """Whether this user name and password may log in; or the reply to send (235 logs
        in, anything else refuses: a proxy passes its provider's answer on)."""

    async def deliver(self, client: Client, transaction: Transaction, raw: bytes) -> str:
        """Take a message (dot-unstuffed, byte-exact); the reply is the answer to DATA."""


class _Closed(Exception):
    """The client went away (or was hung up on) while the session waited for it."""


@dataclass(frozen=True)
class _Deadline:
    """What the client has begun to send and by when it must be whole: ``at``, plus
    ``per_byte`` seconds for each byte received since ``received``."""

    what: str  # "command" or "message"
    at: float
    per_byte: float
    received: int


class SmtpSession(asyncio.Protocol):
    """The server side of one SMTP connection."""

    def __init__(self, handler: SessionHandler, options: SessionOptions) -> None:
        self.handler = handler
        self.options = options
        self.client = Client("")
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched without finding an ending
        self._eof = False
        self._closing = False
        self._paused = False  # reading paused: too much is waiting in the buffer
        self._writing_paused = False  # the client is not reading its replies
        self._received = 0  # bytes received in all
        self._deadline: _Deadline | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._replies: list[bytes] = []
        self._errors = 0
        self._transaction: Transaction | None = None
        self._admitted = False
        self._last_heard = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # The conversation's task; held here because the loop keeps only a weak reference.
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    # asyncio.Protocol: the transport's side.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.client.address = str(peer[0])
        refusal = self.handler.connected(self)
        if refusal is not None:
            transport.write(refusal.encode() + b"\r\n")
            transport.close()
            return
        self._admitted = True
        self.client.tls = _tls_of(transport)
        self._last_heard = self._loop.time()
        self._timer = self._loop.call_later(self.options.timeout_s, self._watch)
        self._task = self._loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._received += len(data)
        self._last_heard = self._loop.time()
        if (not self._paused and self._transport is not None
                and len(self._buffer) > self.options.size_limit + READ_AHEAD):
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def pause_writing(self) -> None:
        # The client does not read its replies: read no more commands (whose replies would
        # pile up here) until it does.
        self._writing_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._transport is not None and not self._paused:
            self._transport.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        transport, self._transport = self._transport, None
        if self._timer is not None:
            self._timer.cancel()
        if self._admitted and transport is not None:
            self._admitted = False
            self.handler.disconnected(self)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _watch(self) -> None:
        """Hang up on a client silent for ``timeout_s`` (RFC 5321 4.5.3.2 timeouts), or one
        that has not finished a command or a message by its deadline (a client that drips
        bytes is never silent)."""
        transport = self._transport
        if transport is None:
            return
        now = self._loop.time()
        due = self._last_heard + self.options.timeout_s
        if self._closing:
            if now >= due:
                # Replies still wait for a client that reads nothing: give up on them.
                transport.abort()
                return
        elif now >= due:
            self._hang_up("timeout", "Timeout")
            return
        elif self._deadline is not None:
            deadline = self._deadline
            at = deadline.at + (self._received - deadline.received) * deadline.per_byte
            if now >= at:
                self._hang_up(f"{deadline.what} too slow",
                              f"{deadline.what.capitalize()} not completed in time")
                return
            due = min(due, at)
        self._timer = self._loop.call_at(due, self._watch)

    def _hang_up(self, reason: str, why: str) -> None:
        self.handler.refused(reason)
        self._reply(f"421 4.4.2 {self.options.hostname} {why}, closing connection")
        self.close()
        if self._transport is not None and self._transport.get_write_buffer_size():
            # The client reads nothing: what is unsent would hold the connection open.
            self._transport.abort()

    def _begin(self, what: str, seconds: float, per_byte: float) -> None:
        """The client has begun a command or a message: it must finish within ``seconds``."""
        deadline = _Deadline(what, self._loop.time() + seconds, per_byte, self._received)
        self._deadline = deadline
        if self._timer is not None and self._timer.when() > deadline.at:
            self._timer.cancel()
            self._timer = self._loop.call_at(deadline.at, self._watch)

    def close(self) -> None:
        """Send what is pending and hang up (the session ends; idempotent)."""
        self._flush()
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    # Reading what the client sent.

    async def _more(self) -> None:
        """Wait for more bytes; raises _Closed when there will be none."""
        if self._eof:
            raise _Closed
        self._flush()
        if self._paused:
            self._paused = False
            if self._transport is not None and not self._writing_paused:
                self._transport.resume_reading()
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _take(self, end: int) -> bytes:
        chunk = bytes(self._buffer[:end])
        del self._buffer[:end]
        self._scanned = 0
        return chunk

    async def _line(self) -> bytes | None:
        """The next command line without its line ending; None when it was too long.

        A line that is not whole at once must be whole within ``command_deadline_s``.
        """
        too_long = False
        try:
            while True:
                end = self._buffer.find(b"\n", self._scanned)
                if end >= 0:
                    line = self._take(end + 1)
                    return None if too_long else line.rstrip(b"\r\n")
                if len(self._buffer) > AUTH_LINE_LIMIT:
                    too_long = True
                    del self._buffer[:]
                self._scanned = len(self._buffer)
                if self._deadline is None and (self._buffer or too_long):
                    self._begin("command", self.options.command_deadline_s, 0.0)
                await self._more()
        finally:
            self._deadline = None

    async def _data(self) -> bytes | None:
        """The message after 354, dot-unstuffed; None when it was over the size limit.

        The data is read through its ending ``CRLF . CRLF`` either way, so a message refused
        for its size leaves the session in step with the client.
        """
        limit = self.options.size_limit
        too_big = False
        try:
            while True:
                if not too_big and self._buffer.startswith(b".\r\n"):
                    self._take(3)
                    return b""
                end = self._buffer.find(END_OF_DATA, max(self._scanned - 4, 0))
                if end >= 0:
                    data = self._take(end + len(END_OF_DATA))
                    if too_big or end + 2 > limit:
                        return None
                    return _unstuff(data[:end + 2])
                if len(self._buffer) > limit + len(END_OF_DATA):
                    # Over the limit: keep only what may begin the ending, in step with the
                    # client.
                    too_big = True
                    del self._buffer[:-len(END_OF_DATA)]
                self._scanned = len(self._buffer)
                if self._deadline is None:
                    self._begin("message", self.options.data_deadline_s,
                                1 / DATA_DEADLINE_BYTES_PER_S)
                await self._more()
        finally:
            self._deadline = None

    # Writing replies.

    def _reply(self, text: str) -> None:
        self._replies.append(text.encode() + b"\r\n")

    def _flush(self) -> None:
        if self._replies and self._transport is not None:
            self._transport.write(b"".join(self._replies))
        self._replies.clear()

    # The conversation.

    async def _run(self) -> None:
        self._reply(f"220 {self.options.hostname} ESMTP mailvault")
        try:
            while not self._closing:
                line = await self._line()
                if line is None:
                    self._error("500 5.5.2 Line too long")
                elif not await self._command(line):
                    break
        except _Closed:
            pass  # the client went away: there is no one left to answer
        except Exception as exc:
            # A fault of ours must not leave the client waiting for a reply that never comes:
            # it hears 421 and tries again later (nothing it sent was acknowledged). What is
            # logged and reported of the error is bounded: its message may quote the client.
            error = f"an SMTP session failed: {type(exc).__name__}: {for_log(str(exc))}"
            log.error("%s (client %s)\n%s", error, self.client.address,
                      "".join(traceback.format_tb(exc.__traceback__)).rstrip())
            self.handler.failed(error)
            self._reply("421 4.3.0 Internal error, try again later")
        finally:
            self.close()

    def _error(self, reply: str) -> None:
        """A refused or malformed command; too many in a row end the session."""
        self._reply(reply)
        self._errors += 1
        if self._errors >= MAX_ERRORS:
            self._reply("421 4.7.0 Too many errors, closing connection")
            self.close()

    async def _command(self, line: bytes) -> bool:
        """Answer one command line; False once the session is over."""
        text = line.decode("utf-8", "surrogateescape")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        if len(line) > COMMAND_LINE_LIMIT and verb != "AUTH":
            self._error("500 5.5.2 Line too long")
        elif verb == "QUIT":
            self._reply("221 2.0.0 Bye")
            self.close()
        elif verb in ("EHLO", "HELO"):
            self._hello(verb, arg)
        elif verb in ("NOOP", "RSET", "HELP", "VRFY"):
            self._simple(verb)
        elif verb == "STARTTLS":
            return await self._starttls(arg)
        elif verb in ("MAIL", "RCPT", "DATA", "AUTH"):
            refusal = self._precondition(verb)
            if refusal is not None:
                self._error(refusal)
            elif verb == "MAIL":
                await self._mail(arg)
            elif verb == "RCPT":
                await self._rcpt(arg)
            elif verb == "DATA":
                await self._data_command(arg)
            else:
                await self._auth(arg)
        elif not verb:
            self._error("500 5.5.2 Error: bad syntax")
        else:
            self._error(f"500 5.5.1 Command {verb[:32]!r} not recognized")
        return not self._closing

    def _hello(self, verb: str, arg: str) -> None:
        if not arg:
            self._error(f"501 5.5.4 Syntax: {verb} hostname")
            return
        self.client.helo = arg
        self._transaction = None
        self._errors = 0
        if verb == "HELO":
            self._reply(f"250 {self.options.hostname}")
            return
        lines = [self.options.hostname, f"SIZE {self.options.size_limit}", "8BITMIME",
                 "SMTPUTF8", "PIPELINING", "ENHANCEDSTATUSCODES"]
        if self.options.starttls is not None and self.client.tls is None:
            lines.append("STARTTLS")
        if self.options.auth != "off" and self.client.tls is not None:
            lines.append("AUTH PLAIN LOGIN")
        lines.append("HELP")
        for line in lines[:-1]:
            self._reply(f"250-{line}")
        self._reply(f"250 {lines[-1]}")

    def _simple(self, verb: str) -> None:
        if verb == "RSET":
            self._transaction = None
            self._reply("250 2.0.0 OK")
        elif verb == "NOOP":
            self._reply("250 2.0.0 OK")
        elif verb == "VRFY":
            self._reply("252 2.5.0 Cannot VRFY user; send mail and it will be archived")
        else:
            self._reply("214 2.0.0 This is an archive: EHLO, MAIL, RCPT, DATA, QUIT")

    def _precondition(self, verb: str) -> str | None:
        """The refusal for a transaction command sent out of order or too early."""
        if self.client.helo is None:
            return "503 5.5.1 Error: send EHLO first"
        if self.options.require_tls and self.client.tls is None:
            self.handler.refused("TLS required")
            return "530 5.7.0 Must issue a STARTTLS command first"
        if verb == "MAIL" and self._transaction is not None:
            return "503 5.5.1 Error: nested MAIL command"
        if verb == "MAIL" and self.options.auth == "required" and self.client.user is None:
            self.handler.refused("not authenticated")
            return "530 5.7.0 Authentication required"
        if verb == "RCPT" and self._transaction is None:
            return "503 5.5.1 Error: need MAIL command"
        if verb == "DATA" and (self._transaction is None or not self._transaction.rcpt_to):
            return "503 5.5.1 Error: need RCPT command"
        return None

    async def _mail(self, arg: str) -> None:
        parsed = _path_argument(arg, "FROM:")
        if parsed is None:
            self._error("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        address, params = parsed
        if _too_long(address):
            self._error("501 5.1.7 Path too long")
            return
        for name, value in params:
            if name == "SIZE":
                if not value.isdigit():
                    self._error("501 5.5.4 Syntax: SIZE=<number>")
                    return
                if int(value) > self.options.size_limit:
                    self.handler.refused("message too big")
                    self._error("552 5.3.4 Message size exceeds the archive's limit")
                    return
            elif name == "BODY":
                if value.upper() not in ("7BIT", "8BITMIME"):
                    self._error("501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME")
                    return
            elif name != "SMTPUTF8" or value:
                self._error(f"555 5.5.4 MAIL FROM parameter {name[:32]!r} not recognized")
                return
        answer = await self.handler.sender(self.client, address, params)
        if answer is not None and not answer.startswith("2"):
            self._error(answer)
            return
        self._transaction = Transaction(address)
        self._reply(answer or "250 2.1.0 OK")

    async def _rcpt(self, arg: str) -> None:
        parsed = _path_argument(arg, "TO:")
        if parsed is None or not parsed[0]:
            self._error("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        address, params = parsed
        if _too_long(address):
            self._error("501 5.1.3 Path too long")
            return
        if params:
            self._error(f"555 5.5.4 RCPT TO parameter {params[0][0][:32]!r} not recognized")
            return
        assert self._transaction is not None
        if len(self._transaction.rcpt_to) >= self.options.max_recipients:
            self._reply("452 4.5.3 Too many recipients")
            return
        answer = await self.handler.recipient(self.client, address)
        if answer is not None and not answer.startswith("2"):
            self._error(answer)
            return
        self._transaction.rcpt_to.append(address)
        self._reply(answer or "250 2.1.5 OK")

    async def _data_command(self, arg: str) -> None:
        if arg:
            self._error("501 5.5.4 Syntax: DATA")
            return
        transaction = self._transaction
        assert transaction is not None
        self._reply("354 End data with <CR><LF>.<CR><LF>")
        raw = await self._data()
        self._transaction = None
        if raw is None:
            self.handler.refused("message too big")
            self._error("552 5.3.4 Message size exceeds the archive's limit")
            return
        self._flush()
        self._reply(await self.handler.deliver(self.client, transaction, raw))

    async def _starttls(self, arg: str) -> bool:
        """Answer STARTTLS and switch the connection to TLS; False when the session is over."""
        if self.options.starttls is None or self.client.tls is not None:
            self._error("502 5.5.1 STARTTLS not available")
            return True
        if arg:
            self._error("501 5.5.4 Syntax: STARTTLS")
            return True
        self._reply("220 2.0.0 Ready to start TLS")
        self._flush()
        # Anything the client pipelined after STARTTLS was sent in clear text: discarded
        # (RFC 3207 4.2), so it cannot be taken as a command of the encrypted session.
        self._take(len(self._buffer))
        assert self._transport is not None
        try:
            transport = await self._loop.start_tls(
                self._transport, self, self.options.starttls, server_side=True,
                ssl_handshake_timeout=self.options.timeout_s)
        except OSError:
            self.handler.refused("TLS handshake failed")
            self.close()
            return False
        if transport is None or self._closing:
            return False
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        # RFC 3207 4.2: the session starts again from EHLO, knowing nothing from before.
        self.client.helo = None
        self.client.tls = _tls_of(transport)
        self._transaction = None
        return True

    async def _auth(self, arg: str) -> None:
        if self.options.auth == "off":
            self._error("502 5.5.1 AUTH not available")
            return
        if self.client.tls is None:
            self.handler.refused("AUTH before TLS")
            self._error("538 5.7.11 Encryption required for requested authentication mechanism")
            return
        if self.client.user is not None:
            self._error("503 5.5.1 Already authenticated")
            return
        if self._transaction is not None:
            self._error("503 5.5.1 AUTH not permitted during a mail transaction")
            return
        throttle = self.options.auth_throttle
        if throttle is not None and throttle.blocked_until(self.client.address,
                                                           time.monotonic()) is not None:
            self.handler.refused("authentication throttled")
            self._error("454 4.7.0 Too many failed logins from your address, try again later")
            return
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            credentials = await self._plain(initial.strip())
        elif mechanism == "LOGIN":
            credentials = await self._login(initial.strip())
        else:
            self._error("504 5.5.4 Unrecognized authentication type")
            return
        if credentials is None:
            self._error("501 5.5.2 Cannot decode the authentication response")
            return
        name, password = credentials
        answer = await self.handler.login(name, password)
        if answer is False or (isinstance(answer, str) and not answer.startswith("235")):
            if throttle is not None:
                throttle.count(self.client.address, time.monotonic())
            self.handler.refused("authentication failed")
            self._error(answer or "535 5.7.8 Authentication credentials invalid")
            return
        self.client.user = name
        self._reply(answer if isinstance(answer, str) else "235 2.7.0 Authentication successful")

    async def _challenge(self, prompt: str) -> bytes | None:
        """Send one 334 challenge; the decoded answer, or None when cancelled or not base64."""
        self._reply(f"334 {prompt}")
        line = await self._line()
        if line is None or line == b"*":
            return None
        return _base64(line)

    async def _plain(self, initial: str) -> tuple[str, bytes] | None:
        response = _base64(initial.encode()) if initial else await self._challenge("")
        if response is None:
            return None
        parts = response.split(b"\0")
        if len(parts) != 3 or not parts[1]:
            return None
        return parts[1].decode("utf-8", "replace"), parts[2]

    async def _login(self, initial: str) -> tuple[str, bytes] | None:
        name = _base64(initial.encode()) if initial else await self._challenge("VXNlcm5hbWU6")
        if not name:
            return None
        password = await self._challenge("UGFzc3dvcmQ6")
        if password is None:
            return None
        return name.decode("utf-8", "replace"), password


def _unstuff(data: bytes) -> bytes:
    """Undo RFC 5321 4.5.2 transparency: a line's leading period is dropped."""
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n") if b"\r\n." in data else data


def _too_long(address: str) -> bool:
    """Whether ``<address>`` is over MAX_PATH octets."""
    return len(address.encode("utf-8", "surrogateescape")) + 2 > MAX_PATH


def _base64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _path_argument(arg: str, keyword: str) -> tuple[str, list[tuple[str, str]]] | None:
    """Split 'FROM:<a@b> SIZE=10 BODY=8BITMIME' into ('a@b', [('SIZE', '10'), ...]).

    None when it is not one. ``<>`` gives ""; a source route (``<@relay:a@b>``) is dropped.
    """
    if arg[:len(keyword)].upper() != keyword:
        return None
    rest = arg[len(keyword):].lstrip()
    if rest.startswith("<"):
        close = rest.find(">")
        if close < 0:
            return None
        address, rest = rest[1:close], rest[close + 1:]
        if rest and not rest.startswith(" "):
            return None
    else:
        address, _, rest = rest.partition(" ")
    if address.startswith("@"):
        address = address.partition(":")[2]
    if any(c in address for c in " <>\t") and not address.startswith('"'):
        return None
    params = []
    for word in rest.split():
        name, _, value = word.partition("=")
        params.append((name.upper(), value))
    return address, params


def _tls_of(transport: asyncio.BaseTransport) -> str | None:
    """'TLSv1.3 TLS_AES_256_GCM_SHA384' for an encrypted transport, else None."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    cipher = ssl_object.cipher()
    return f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()
