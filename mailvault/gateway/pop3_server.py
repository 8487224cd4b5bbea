"""One POP3 server session (RFC 1939) as a state machine without sockets: bytes in, actions
out (the edge, ``pop3_service.py``, writes, starts TLS, checks logins, reads and deletes mail).

AUTHORIZATION (``pop3_login.py``) -> TRANSACTION (STAT, LIST, UIDL, RETR, TOP, DELE, RSET,
NOOP, CAPA, QUIT) -> UPDATE. Deletions are only marks until QUIT in TRANSACTION: a client that
drops the connection, or sends QUIT before logging in, deletes nothing.

While the machine waits for the edge (a login to check, a message to read, deletions to
apply) it takes no further command: what arrives meanwhile stays buffered, in order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailvault.gateway.pop3_login import (
    ERR_ARGUMENTS,
    ERR_LOGIN,
    ERR_NOT_NOW,
    ERR_TOO_LONG,
    ERR_TOO_MANY,
    ERR_UNKNOWN,
    OK_BYE,
    Close,
    Login,
    LoginState,
    Send,
    StartTls,
)
from mailvault.gateway.pop3_wire import (
    TOO_LONG,
    LineReader,
    first_lines,
    parse_command,
    stuffed,
)

ERR_NO_MESSAGE = b"-ERR No such message\r\n"
ERR_DELETED = b"-ERR Message is deleted\r\n"
# Extensions the TRANSACTION state offers (RFC 2449 CAPA names).
TRANSACTION_CAPABILITIES = (b"TOP", b"UIDL", b"EXPIRE NEVER", b"IMPLEMENTATION mailvault")
# A session ends after this many commands refused in a row, or this many failed logins.
MAX_ERRORS = 20
MAX_LOGIN_FAILURES = 3


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"
    CLOSED = "closed"


@dataclass(frozen=True)
class Entry:
    """One message of the maildrop as the edge lists it: an id for the edge, its size in
    octets, and its unique id (UIDL: stable across sessions, at most 70 printable characters)."""

    key: str
    size: int
    uidl: str


@dataclass(frozen=True)
class Retrieve:
    """Read the message with this key, then call ``retrieved`` (or ``retrieve_failed``)."""

    key: str


@dataclass(frozen=True)
class Update:
    """QUIT in TRANSACTION: delete these messages, then call ``updated`` (or
    ``update_failed``)."""

    keys: tuple[str, ...]


Action = Send | StartTls | Close | Login | Retrieve | Update


@dataclass(frozen=True)
class ServerOptions:
    """What the edge decides for a connection."""

    tls_active: bool  # implicit TLS (POP3S)
    tls_available: bool  # STLS may be offered
    plaintext_allowed: bool  # a password may be taken without TLS (loopback)
    max_commands: int = 100_000
    greeting: bytes = b"+OK mailvault POP3 ready\r\n"


class Pop3Server:
    """The protocol of one POP3 session; see the module's docstring."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.state = State.AUTHORIZATION
        self.login = LoginState(options.tls_active, options.tls_available,
                                options.plaintext_allowed)
        self.user: str | None = None
        self._lines = LineReader()
        self._entries: list[Entry] = []
        self._deleted: set[int] = set()
        self._waiting: tuple[str, int] | None = None  # ("RETR"|"TOP"|"LOGIN"|"QUIT", n)
        self._commands = 0
        self._errors = 0

    def start(self) -> list[Action]:
        """The greeting."""
        return [Send(self.options.greeting)]

    @property
    def waiting(self) -> bool:
        """Whether the machine waits for the edge's answer to its last action."""
        return self._waiting is not None

    def receive(self, data: bytes) -> list[Action]:
        """Bytes from the client; the actions up to the first that needs an answer."""
        self._lines.feed(data)
        return self._run()

    def tls_started(self) -> list[Action]:
        """TLS is on after STLS: AUTHORIZATION starts over (RFC 2595 4)."""
        self._expect("STLS")
        self.login.tls_active = True
        return self._run()

    def logged_in(self, user: str, entries: list[Entry]) -> list[Action]:
        """The login was right: ``entries`` is the maildrop, numbered from 1 in this order."""
        self._expect("LOGIN")
        self.user = user
        self._entries = list(entries)
        self.state = State.TRANSACTION
        octets = sum(e.size for e in self._entries)
        return [Send(b"+OK %d messages (%d octets)\r\n" % (len(self._entries), octets)),
                *self._run()]

    def login_refused(self, reply: bytes = ERR_LOGIN) -> list[Action]:
        """The login was wrong (or the maildrop cannot be opened: ``reply`` says so)."""
        self._expect("LOGIN")
        self.login.failures += 1
        if self.login.failures >= MAX_LOGIN_FAILURES:
            return self._close(reply)
        return [Send(reply), *self._run()]

    def retrieved(self, raw: bytes) -> list[Action]:
        """The message asked for by the last ``Retrieve``."""
        command, lines = self._expect("RETR", "TOP")
        if command == "TOP":
            raw = first_lines(raw, lines)
        return [Send(b"+OK %d octets\r\n" % len(raw) + stuffed(raw)), *self._run()]

    def retrieve_failed(self, reason: bytes) -> list[Action]:
        """The message could not be read (``reason``: a one-line text, no CRLF)."""
        self._expect("RETR", "TOP")
        return [Send(b"-ERR [SYS/TEMP] " + reason + b"\r\n"), *self._run()]

    def updated(self) -> list[Action]:
        """The deletions are done: the session ends."""
        self._expect("QUIT")
        return self._close(OK_BYE)

    def update_failed(self, reason: bytes) -> list[Action]:
        """The deletions could not be applied (RFC 1939 6: -ERR, and the session ends)."""
        self._expect("QUIT")
        return self._close(b"-ERR [SYS/TEMP] " + reason + b"\r\n")

    def _expect(self, *commands: str) -> tuple[str, int]:
        if self._waiting is None or self._waiting[0] not in commands:
            raise RuntimeError(f"the POP3 session waits for {self._waiting}, not {commands}")
        waited, self._waiting = self._waiting, None
        return waited

    def _close(self, reply: bytes) -> list[Action]:
        self.state = State.CLOSED
        return [Send(reply), Close()]

    def _run(self) -> list[Action]:
        actions: list[Action] = []
        while self._waiting is None and self.state is not State.CLOSED:
            line = self._lines.next_line()
            if line is None:
                break
            self._commands += 1
            if self._commands > self.options.max_commands:
                return actions + self._close(ERR_TOO_MANY)
            if line is TOO_LONG:
                actions += self._refuse(ERR_TOO_LONG)
                continue
            assert isinstance(line, bytes)
            actions += self._command(line)
        return actions

    def _refuse(self, reply: bytes) -> list[Action]:
        self._errors += 1
        if self._errors >= MAX_ERRORS:
            return self._close(ERR_TOO_MANY)
        return [Send(reply)]

    def _command(self, line: bytes) -> list[Action]:
        command = parse_command(line)
        if self.state is State.AUTHORIZATION:
            actions = self.login.handle(command, TRANSACTION_CAPABILITIES)
            for action in actions:
                if isinstance(action, Login):
                    self._waiting = ("LOGIN", 0)
                elif isinstance(action, StartTls):
                    # Nothing sent before the handshake may count after it (RFC 2595 4).
                    self._lines.clear()
                    self._waiting = ("STLS", 0)
                elif isinstance(action, Close):
                    self.state = State.CLOSED
            if len(actions) == 1 and isinstance(actions[0], Send) and \
                    actions[0].data.startswith(b"-ERR"):
                return self._refuse(actions[0].data)
            self._errors = 0
            return list(actions)
        reply = self._transaction(command.keyword, command.args)
        if len(reply) == 1 and isinstance(reply[0], Send) and reply[0].data.startswith(b"-ERR"):
            return self._refuse(reply[0].data)
        self._errors = 0
        return reply

    def _transaction(self, keyword: str, args: tuple[str, ...]) -> list[Action]:
        if keyword == "NOOP" and not args:
            return [Send(b"+OK\r\n")]
        if keyword == "STAT" and not args:
            live = self._live()
            return [Send(b"+OK %d %d\r\n" % (len(live), sum(e.size for _, e in live)))]
        if keyword in ("LIST", "UIDL") and len(args) <= 1:
            return [Send(self._listing(keyword, args))]
        expected = {"RETR": 1, "DELE": 1, "TOP": 2}.get(keyword)
        if expected is not None and len(args) == expected:
            return self._message_command(keyword, args)
        if keyword == "RSET" and not args:
            self._deleted.clear()
            return [Send(b"+OK\r\n")]
        if keyword == "QUIT" and not args:
            if not self._deleted:
                return self._close(OK_BYE)
            self.state = State.UPDATE
            self._waiting = ("QUIT", 0)
            return [Update(tuple(self._entries[n - 1].key for n in sorted(self._deleted)))]
        if keyword == "CAPA" and not args:
            return [Send(self.login.capabilities(TRANSACTION_CAPABILITIES))]
        if keyword in ("NOOP", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "QUIT",
                       "CAPA"):
            return [Send(ERR_ARGUMENTS)]
        if keyword in ("USER", "PASS", "STLS", "APOP", "AUTH"):
            return [Send(ERR_NOT_NOW)]
        return [Send(ERR_UNKNOWN)]

    def _message_command(self, keyword: str, args: tuple[str, ...]) -> list[Action]:
        """RETR n, TOP n lines, DELE n."""
        number = self._number(args[0])
        if number is None:
            return [Send(ERR_NO_MESSAGE)]
        if number in self._deleted:
            return [Send(ERR_DELETED)]
        if keyword == "DELE":
            self._deleted.add(number)
            return [Send(b"+OK Marked for deletion\r\n")]
        lines = -1
        if keyword == "TOP":
            if not _is_number(args[-1]):
                return [Send(ERR_ARGUMENTS)]
            lines = int(args[-1])
        self._waiting = (keyword, lines)
        return [Retrieve(self._entries[number - 1].key)]

    def _live(self) -> list[tuple[int, Entry]]:
        return [(n, e) for n, e in enumerate(self._entries, 1) if n not in self._deleted]

    def _number(self, text: str) -> int | None:
        if not _is_number(text) or not 1 <= int(text) <= len(self._entries):
            return None
        return int(text)

    def _listing(self, keyword: str, args: tuple[str, ...]) -> bytes:
        def line(number: int, entry: Entry) -> bytes:
            value = entry.uidl.encode() if keyword == "UIDL" else b"%d" % entry.size
            return b"%d %s" % (number, value)

        if args:
            number = self._number(args[0])
            if number is None:
                return ERR_NO_MESSAGE
            if number in self._deleted:
                return ERR_DELETED
            return b"+OK " + line(number, self._entries[number - 1]) + b"\r\n"
        body = b"".join(line(n, e) + b"\r\n" for n, e in self._live())
        return b"+OK\r\n" + body + b".\r\n"


def _is_number(text: str) -> bool:
    """ASCII digits only (str.isdigit also takes '²'), and not absurdly many."""
    return text.isascii() and text.isdigit() and len(text) <= 10
