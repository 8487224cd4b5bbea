"""The SMTP client side of the proxy, without sockets: replies parsed from bytes, and the
login conversation with a provider as a state machine that says what to send next.

The login refuses, before any credential is written, a provider that offers no TLS: with
implicit TLS (port 465) the connection is encrypted from its first byte; otherwise the
provider's EHLO must offer STARTTLS, and AUTH is sent only on the encrypted session's second
EHLO (RFC 3207 4.2: what was learnt before TLS is forgotten).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import Enum

from mailvault.errors import GatewayError

# A reply line from a provider (RFC 5321 4.5.3.1.5 allows 512 octets); longer lines are a
# provider out of step, not something to keep reading.
REPLY_LINE_LIMIT = 4096
# Lines of one multi-line reply (an EHLO reply has a few dozen at most).
REPLY_LINES_LIMIT = 200
IMPLICIT_TLS_PORT = 465
STARTTLS_PORT = 587


@dataclass(frozen=True)
class Reply:
    """One whole SMTP reply: its code and the text of each line."""

    code: int
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def text(self) -> str:
        """The reply as it is sent on (lines joined by CRLF, without the last CRLF)."""
        last = len(self.lines) - 1
        return "\r\n".join(f"{self.code}{' ' if i == last else '-'}{line}".rstrip()
                           for i, line in enumerate(self.lines))


class ReplyReader:
    """Whole replies out of the bytes a provider sends, however they are split."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lines: list[str] = []

    def feed(self, data: bytes) -> list[Reply]:
        """The replies completed by ``data``; GatewayError on a malformed reply."""
        self._buffer += data
        replies: list[Reply] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > REPLY_LINE_LIMIT:
                    raise GatewayError("the provider sent a reply line that is too long.")
                return replies
            line = bytes(self._buffer[:end]).rstrip(b"\r").decode("utf-8", "replace")
            del self._buffer[:end + 1]
            if len(line) > REPLY_LINE_LIMIT:
                raise GatewayError("the provider sent a reply line that is too long.")
            code = line[:3]
            if not (code.isdigit() and line[3:4] in ("", " ", "-")):
                raise GatewayError("the provider sent something that is not an SMTP reply.")
            if self._lines and not self._lines[0].startswith(code):
                raise GatewayError("the provider changed its reply code within one reply.")
            self._lines.append(line)
            if len(self._lines) > REPLY_LINES_LIMIT:
                raise GatewayError("the provider sent a reply with too many lines.")
            if line[3:4] != "-":
                replies.append(Reply(int(code), tuple(text[4:] for text in self._lines)))
                self._lines = []

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished reply are held."""
        return bool(self._buffer or self._lines)


def extensions(ehlo: Reply) -> dict[str, str]:
    """The EHLO keywords (upper case) and their parameters: {"AUTH": "PLAIN LOGIN", ...}."""
    found = {}
    for line in ehlo.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        found[keyword.upper()] = params.strip()
    return found


class Step(Enum):
    """What the login machine asks of its edge after a reply."""

    SEND = "send"  # write ``Login.outgoing``, then feed the next reply
    START_TLS = "start_tls"  # upgrade the connection, then call ``tls_started``
    READY = "ready"  # logged in: the session is the proxy's to use


class _State(Enum):
    GREETING = 1
    EHLO = 2
    STARTTLS = 3
    AUTH = 4
    AUTH_LOGIN_USER = 5
    AUTH_LOGIN_PASSWORD = 6
    DONE = 7


class LoginRefused(GatewayError):
    """The provider refused a step of the login; ``reply`` is its answer, to pass on."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"the provider refused the login ({reply.code}).")
        self.reply = reply


class Login:
    """The conversation from a provider's greeting to its 235, one reply at a time.

    ``implicit_tls`` says the connection is already encrypted. After each ``receive``, the
    edge does what the returned Step says; ``outgoing`` holds the bytes to write (the AUTH
    line holds the password: it is never logged, and the machine drops it once sent).
    """

    def __init__(self, hostname: str, username: str, password: bytes,
                 implicit_tls: bool) -> None:
        self.hostname = hostname
        self.outgoing = b""
        self.encrypted = implicit_tls
        self.extensions: dict[str, str] = {}
        self._credentials = (username, password)
        self._state = _State.GREETING

    def receive(self, reply: Reply) -> Step:
        """Take the provider's next reply; GatewayError (LoginRefused for a refusal the
        client should hear) when the login cannot go on."""
        state = self._state
        if state is _State.GREETING:
            if reply.code != 220:
                raise LoginRefused(reply)
            return self._ehlo()
        if state is _State.EHLO:
            if not reply.ok:
                raise LoginRefused(reply)
            self.extensions = extensions(reply)
            if not self.encrypted:
                if "STARTTLS" not in self.extensions:
                    raise GatewayError("the provider offers neither implicit TLS nor "
                                       "STARTTLS: no password was sent to it.")
                self._state = _State.STARTTLS
                self.outgoing = b"STARTTLS\r\n"
                return Step.SEND
            return self._auth()
        if state is _State.STARTTLS:
            if reply.code != 220:
                raise GatewayError(f"the provider refused STARTTLS ({reply.code}): no "
                                   "password was sent to it.")
            self.outgoing = b""
            return Step.START_TLS
        if state in (_State.AUTH_LOGIN_USER, _State.AUTH_LOGIN_PASSWORD):
            if reply.code != 334:
                self.outgoing = b""
                raise LoginRefused(reply)
            username, password = self._credentials
            if state is _State.AUTH_LOGIN_USER:
                self._state = _State.AUTH_LOGIN_PASSWORD
                self.outgoing = base64.b64encode(username.encode()) + b"\r\n"
            else:
                self._credentials = ("", b"")
                self._state = _State.AUTH
                self.outgoing = base64.b64encode(password) + b"\r\n"
            return Step.SEND
        if state is _State.AUTH:
            self.outgoing = b""
            if reply.code != 235:
                raise LoginRefused(reply)
            self._state = _State.DONE
            return Step.READY
        raise GatewayError("the provider sent a reply nobody asked for.")

    def tls_started(self) -> Step:
        """The edge has finished the TLS handshake after STARTTLS: EHLO again."""
        if self._state is not _State.STARTTLS:
            raise GatewayError("TLS was started out of turn.")
        self.encrypted = True
        return self._ehlo()

    def _ehlo(self) -> Step:
        self._state = _State.EHLO
        self.outgoing = f"EHLO {self.hostname}\r\n".encode()
        return Step.SEND

    def _auth(self) -> Step:
        assert self.encrypted  # the one rule this machine exists for
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" not in mechanisms:
            if "LOGIN" not in mechanisms:
                raise GatewayError("the provider offers neither AUTH PLAIN nor AUTH LOGIN.")
            self._state = _State.AUTH_LOGIN_USER
            self.outgoing = b"AUTH LOGIN\r\n"
            return Step.SEND
        username, password = self._credentials
        self._credentials = ("", b"")
        token = base64.b64encode(b"\0" + username.encode() + b"\0" + password)
        self._state = _State.AUTH
        self.outgoing = b"AUTH PLAIN " + token + b"\r\n"
        return Step.SEND


def mail_command(address: str, params: list[tuple[str, str]],
                 offered: dict[str, str]) -> bytes:
    """MAIL FROM for the provider, with the client's parameters it offers (SIZE, BODY,
    SMTPUTF8); one it does not offer is left out."""
    keep = {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8"}
    words = [f"MAIL FROM:<{address}>"]
    for name, value in params:
        if keep.get(name) in offered:
            words.append(f"{name}={value}" if value else name)
    return " ".join(words).encode("utf-8", "surrogateescape") + b"\r\n"


def rcpt_command(address: str) -> bytes:
    """RCPT TO for the provider."""
    return f"RCPT TO:<{address}>\r\n".encode("utf-8", "surrogateescape")


def data_payload(raw: bytes) -> bytes:
    """A message as sent after 354: dot-stuffed (RFC 5321 4.5.2), ending in CRLF . CRLF."""
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"
