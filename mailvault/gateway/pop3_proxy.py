"""One POP3 proxy session as a state machine without sockets: the client's bytes and the
provider's bytes in, actions out (the edge, ``pop3_proxy_service.py``, connects, starts TLS on
either side, stores messages, writes).

The client logs in as ``remote_username%target_server%mailbox_id`` with its provider
password, after TLS (``pop3_login.py``). The machine then has the edge connect to the provider
(implicit TLS, or plaintext that must offer STLS), logs in there with USER/PASS only once TLS
is on, lists the provider's UIDLs, and from then on passes each command through and each reply
back as it came. A message the client retrieves (RETR) is stored in the mailbox, under the
provider's UIDL, before the client gets it; the mailbox keeps one copy per key. One command is
in flight at a time: POP3 is a lock-step protocol and the reply's framing depends on it.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from mailvault.errors import GatewayError
from mailvault.gateway.pop3_login import (
    ERR_NOT_NOW,
    ERR_TOO_LONG,
    ERR_TOO_MANY,
    Close,
    Login,
    LoginState,
    Send,
    StartTls,
)
from mailvault.gateway.pop3_wire import (
    CRLF,
    MAX_STATUS_LINE,
    TOO_LONG,
    LineReader,
    MultilineReader,
    parse_command,
    unstuffed,
)
from mailvault.gateway.upstream import UpstreamTarget, parse_login

ERR_USER_FORM = (b"-ERR [AUTH] Log in as remote_username%target_server%mailbox_id\r\n")
ERR_NO_TLS_UPSTREAM = (b"-ERR [SYS/PERM] The provider offers no TLS (neither POP3S nor STLS): "
                       b"the password was not sent\r\n")
ERR_UPSTREAM_LOST = b"-ERR [SYS/TEMP] The provider closed the connection\r\n"
ERR_UPSTREAM_GARBLED = b"-ERR [SYS/TEMP] The provider's reply is not POP3\r\n"
ERR_TOO_LARGE = b"-ERR [SYS/PERM] The message is too large for the gateway to keep a copy\r\n"
# Commands whose +OK reply is a multi-line response (with no argument, for LIST and UIDL).
MULTILINE = {"RETR", "TOP", "CAPA"}
MULTILINE_WITHOUT_ARGUMENT = {"LIST", "UIDL"}
# Never passed through: the proxy alone handles TLS and login on each leg.
LOCAL_ONLY = {"STLS", "USER", "PASS", "APOP", "AUTH"}
MAX_LOGIN_FAILURES = 3
POP3S_PORT = 995


class Phase(enum.Enum):
    AUTHORIZATION = "authorization"  # the client logs in to the proxy
    CLIENT_TLS = "client tls"  # the edge starts TLS with the client (STLS)
    CONNECTING = "connecting"  # the edge connects to the provider
    GREETING = "greeting"
    CAPA = "capa"  # plaintext: is STLS offered?
    STLS = "stls"
    UPSTREAM_TLS = "upstream tls"  # the edge starts TLS with the provider
    USER = "user"
    PASS = "pass"
    LISTING = "listing"  # UIDL, to key what the client retrieves
    TRANSACTION = "transaction"
    STORING = "storing"  # the edge stores a retrieved message
    CLOSED = "closed"


class Side(enum.Enum):
    CLIENT = "client"
    UPSTREAM = "upstream"


@dataclass(frozen=True)
class OpenUpstream:
    """Connect to the provider (allowlist, TLS policy), then call ``upstream_connected``
    (or ``upstream_failed``)."""

    target: UpstreamTarget


@dataclass(frozen=True)
class ToUpstream:
    """Write these bytes to the provider."""

    data: bytes = field(repr=False)


@dataclass(frozen=True)
class StartUpstreamTls:
    """Start TLS with the provider (verified), then call ``upstream_tls_started``."""


@dataclass(frozen=True)
class CloseUpstream:
    """Close the provider connection (what was written goes first)."""


@dataclass(frozen=True)
class Store:
    """Keep this message in the mailbox under ``key`` (once), then call ``stored`` (or
    ``store_failed``)."""

    mailbox_id: str
    key: str
    raw: bytes = field(repr=False)


ProxyAction = (Send | StartTls | Close | Login | OpenUpstream | ToUpstream | StartUpstreamTls
               | CloseUpstream | Store)


@dataclass(frozen=True)
class ProxyOptions:
    tls_active: bool  # the client connected with implicit TLS
    tls_available: bool  # STLS may be offered to the client
    max_message_bytes: int
    max_commands: int = 100_000
    greeting: bytes = b"+OK mailvault POP3 proxy ready\r\n"


def message_key(target: UpstreamTarget, uidl: str | None, raw: bytes) -> str:
    """What a retrieved message is kept under: the provider's UIDL, which is unique only in
    one maildrop, so with the provider's user and server; a provider without UIDL gets the
    message's SHA-256 instead."""
    unique = uidl if uidl is not None else "sha256:" + hashlib.sha256(raw).hexdigest()
    return f"pop3:{target.remote_username}@{target.where(POP3S_PORT)}:{unique}"


class Pop3Proxy:
    """The protocol of one proxied POP3 session; see the module's docstring."""

    def __init__(self, options: ProxyOptions) -> None:
        self.options = options
        self.phase = Phase.AUTHORIZATION
        self.login = LoginState(options.tls_active, options.tls_available,
                                plaintext_allowed=False)
        self.target: UpstreamTarget | None = None
        self._password: bytes | None = None
        self._client = LineReader()
        self._upstream = LineReader(MAX_STATUS_LINE)
        self._multiline: MultilineReader | None = None
        self._status = b""  # the status line of the reply being read, as received
        self._pending: tuple[str, tuple[str, ...]] | None = None
        self._uidls: dict[int, str] = {}
        self._upstream_tls = False
        self._commands = 0
        self._failures = 0

    def start(self) -> list[ProxyAction]:
        return [Send(self.options.greeting)]

    @property
    def reading(self) -> Side | None:
        """Whose bytes the machine needs next (None: it waits for the edge's answer)."""
        if self.phase in (Phase.AUTHORIZATION, Phase.TRANSACTION):
            return Side.CLIENT if self._pending is None else Side.UPSTREAM
        if self.phase in (Phase.GREETING, Phase.CAPA, Phase.STLS, Phase.USER, Phase.PASS,
                          Phase.LISTING):
            return Side.UPSTREAM
        return None

    # Events from the client side.

    def client_data(self, data: bytes) -> list[ProxyAction]:
        self._client.feed(data)
        return self._run_client()

    def client_tls_started(self) -> list[ProxyAction]:
        self._expect(Phase.CLIENT_TLS)
        self.login.tls_active = True
        self.phase = Phase.AUTHORIZATION
        return self._run_client()

    # Events from the provider side.

    def upstream_connected(self, tls: bool) -> list[ProxyAction]:
        """Connected to the provider, with implicit TLS or in plaintext."""
        self._expect(Phase.CONNECTING)
        self._upstream_tls = tls
        self.phase = Phase.GREETING
        return []

    def upstream_failed(self, reply: bytes) -> list[ProxyAction]:
        """The provider could not be reached, is not allowed, or its certificate is wrong:
        ``reply`` (one -ERR line) goes to the client, who may log in again."""
        self._expect(Phase.CONNECTING, Phase.UPSTREAM_TLS)
        return self._login_failed(reply, close_upstream=self.phase is Phase.UPSTREAM_TLS)

    def upstream_tls_started(self) -> list[ProxyAction]:
        self._expect(Phase.UPSTREAM_TLS)
        self._upstream_tls = True
        self._upstream.clear()
        return self._send_user()

    def upstream_data(self, data: bytes) -> list[ProxyAction]:
        if self._multiline is not None:
            rest = self._multiline.feed(data)
            if not self._multiline.done:
                return []
            # Bytes after the reply (POP3 is lock-step: there should be none) are read as
            # the start of the next reply.
            self._upstream.feed(rest)
            return self._multiline_done()
        self._upstream.feed(data)
        actions: list[ProxyAction] = []
        while self.reading is Side.UPSTREAM and self._multiline is None:
            line = self._upstream.next_line()
            if line is None:
                break
            if not isinstance(line, bytes) or not line.startswith((b"+OK", b"-ERR")):
                return actions + self._abort(ERR_UPSTREAM_GARBLED)
            actions += self._upstream_reply(line)
            if self._multiline is not None:
                # The status line is read; what follows it belongs to the multi-line body.
                rest = self._upstream.take()
                if rest:
                    actions += self.upstream_data(rest)
                break
        return actions

    def upstream_closed(self) -> list[ProxyAction]:
        """The provider hung up."""
        return self._abort(ERR_UPSTREAM_LOST)

    # Events from the mailbox.

    def stored(self) -> list[ProxyAction]:
        """The message is kept (or was already): the client gets the reply as received."""
        self._expect(Phase.STORING)
        assert self._multiline is not None
        reply = self._status + CRLF + self._multiline.body() + b".\r\n"
        return self._reply_done(reply)

    def store_failed(self, reason: bytes) -> list[ProxyAction]:
        """No copy could be kept: the client does not get the message (it stays at the
        provider, and can be retrieved again later)."""
        self._expect(Phase.STORING)
        return self._reply_done(b"-ERR [SYS/TEMP] " + reason + b"\r\n")

    # The rest.

    def _expect(self, *phases: Phase) -> None:
        if self.phase not in phases:
            raise RuntimeError(f"the POP3 proxy is in {self.phase}, not {phases}")

    def _run_client(self) -> list[ProxyAction]:
        actions: list[ProxyAction] = []
        while self.phase in (Phase.AUTHORIZATION, Phase.TRANSACTION) and self._pending is None:
            line = self._client.next_line()
            if line is None:
                break
            self._commands += 1
            if self._commands > self.options.max_commands:
                return actions + self._abort(ERR_TOO_MANY)
            if line is TOO_LONG:
                actions.append(Send(ERR_TOO_LONG))
                continue
            assert isinstance(line, bytes)
            if self.phase is Phase.AUTHORIZATION:
                actions += self._authorization(line)
            else:
                actions += self._transaction(line)
        return actions

    def _authorization(self, line: bytes) -> list[ProxyAction]:
        actions: list[ProxyAction] = []
        for action in self.login.handle(parse_command(line), (b"TOP", b"UIDL")):
            if isinstance(action, Login):
                actions += self._open(action)
            elif isinstance(action, StartTls):
                self._client.clear()  # nothing sent before the handshake counts (RFC 2595)
                self.phase = Phase.CLIENT_TLS
                actions.append(action)
            elif isinstance(action, Close):
                self.phase = Phase.CLOSED
                actions.append(action)
            else:
                actions.append(action)
        return actions

    def _open(self, login: Login) -> list[ProxyAction]:
        try:
            target = parse_login(login.user)
        except GatewayError:
            return self._login_failed(ERR_USER_FORM, close_upstream=False)
        self.target = target
        self._password = login.password.encode("utf-8", "surrogateescape")
        self.phase = Phase.CONNECTING
        return [OpenUpstream(target)]

    def _login_failed(self, reply: bytes, *, close_upstream: bool) -> list[ProxyAction]:
        self._password = None
        self.target = None
        self._multiline = None
        self._upstream.clear()
        self._failures += 1
        actions: list[ProxyAction] = [CloseUpstream()] if close_upstream else []
        if self._failures >= MAX_LOGIN_FAILURES:
            self.phase = Phase.CLOSED
            return [*actions, Send(reply), Close()]
        self.phase = Phase.AUTHORIZATION
        return [*actions, Send(reply), *self._run_client()]

    def _send_user(self) -> list[ProxyAction]:
        assert self.target is not None
        self.phase = Phase.USER
        return [ToUpstream(b"USER " + self.target.remote_username.encode(
            "utf-8", "surrogateescape") + CRLF)]

    def _upstream_reply(self, line: bytes) -> list[ProxyAction]:
        ok = line.startswith(b"+OK")
        phase = self.phase
        if phase is Phase.GREETING:
            if not ok:
                return self._login_failed(line + CRLF, close_upstream=True)
            if self._upstream_tls:
                return self._send_user()
            self.phase = Phase.CAPA
            return [ToUpstream(b"CAPA\r\n")]
        if phase is Phase.STLS:
            if not ok:
                return self._no_tls()
            self.phase = Phase.UPSTREAM_TLS
            return [StartUpstreamTls()]
        if phase is Phase.USER:
            if not ok:
                return self._login_failed(line + CRLF, close_upstream=True)
            # TLS is on here, or the machine would not have come this far.
            assert self._upstream_tls and self._password is not None
            self.phase = Phase.PASS
            password, self._password = self._password, None
            return [ToUpstream(b"PASS " + password + CRLF)]
        if phase is Phase.PASS:
            if not ok:
                return self._login_failed(line + CRLF, close_upstream=True)
            self._status = line
            self.phase = Phase.LISTING
            return [ToUpstream(b"UIDL\r\n")]
        if phase is Phase.LISTING:
            # No UIDL at this provider: messages are keyed by their hash instead.
            if ok:
                self._multiline = MultilineReader(MAX_STATUS_LINE * 1024)
                return []
            return self._logged_in()
        if phase is Phase.CAPA:
            if ok:
                self._multiline = MultilineReader(MAX_STATUS_LINE * 16)
                return []
            return self._no_tls()
        # A reply to a command passed through.
        assert self._pending is not None
        keyword, args = self._pending
        self._status = line
        if ok and (keyword in MULTILINE or (keyword in MULTILINE_WITHOUT_ARGUMENT and not args)):
            self._multiline = MultilineReader(self.options.max_message_bytes)
            return []
        return self._reply_done(line + CRLF)

    def _multiline_done(self) -> list[ProxyAction]:
        reader = self._multiline
        assert reader is not None
        if self.phase is Phase.CAPA:
            self._multiline = None
            offered = {line.split(b" ")[0].upper() for line in reader.body().split(CRLF)}
            if b"STLS" not in offered:
                return self._no_tls()
            self.phase = Phase.STLS
            return [ToUpstream(b"STLS\r\n")]
        if self.phase is Phase.LISTING:
            self._multiline = None
            for line in reader.body().split(CRLF):
                listed, _, uidl = line.partition(b" ")
                if listed.isdigit() and uidl:
                    self._uidls[int(listed)] = uidl.decode("ascii", "replace").strip()
            return self._logged_in()
        assert self._pending is not None
        keyword, args = self._pending
        if keyword == "RETR" and self.target is not None:
            if reader.over_limit:
                return self._reply_done(ERR_TOO_LARGE)
            raw = unstuffed(reader.body())
            number = int(args[0]) if args and args[0].isdigit() else 0
            self.phase = Phase.STORING
            return [Store(self.target.mailbox_id,
                          message_key(self.target, self._uidls.get(number), raw), raw)]
        if reader.over_limit:
            return self._reply_done(ERR_TOO_LARGE)
        body = reader.body()
        if keyword == "CAPA":
            # The proxy alone speaks STLS and logs in: those lines are not the client's.
            body = b"".join(line + CRLF for line in body.split(CRLF)[:-1]
                            if line.split(b" ")[0].upper() not in (b"STLS", b"SASL"))
        return self._reply_done(self._status + CRLF + body + b".\r\n")

    def _logged_in(self) -> list[ProxyAction]:
        self.phase = Phase.TRANSACTION
        self._failures = 0
        return [Send(self._status + CRLF), *self._run_client()]

    def _no_tls(self) -> list[ProxyAction]:
        self._multiline = None
        return [ToUpstream(b"QUIT\r\n"), *self._login_failed(ERR_NO_TLS_UPSTREAM,
                                                              close_upstream=True)]

    def _reply_done(self, reply: bytes) -> list[ProxyAction]:
        keyword = self._pending[0] if self._pending else ""
        self._pending = None
        self._multiline = None
        self.phase = Phase.TRANSACTION
        actions: list[ProxyAction] = [Send(reply)]
        if keyword == "QUIT":
            self.phase = Phase.CLOSED
            return [*actions, CloseUpstream(), Close()]
        return actions + self._run_client()

    def _transaction(self, line: bytes) -> list[ProxyAction]:
        command = parse_command(line)
        if command.keyword in LOCAL_ONLY:
            return [Send(ERR_NOT_NOW)]
        self._pending = (command.keyword, command.args)
        return [ToUpstream(line + CRLF)]

    def _abort(self, reply: bytes) -> list[ProxyAction]:
        self.phase = Phase.CLOSED
        self._password = None
        return [Send(reply), CloseUpstream(), Close()]
