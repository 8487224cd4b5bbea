"""The AUTHORIZATION state of a POP3 server (RFC 1939 4, STLS from RFC 2595, CAPA from
RFC 2449), shared by the gateway's POP3 service and its POP3 proxy: CAPA, STLS, USER, PASS and
QUIT, with the rule that no password is taken before TLS unless the connection is exempt
(loopback, for the service). No sockets: commands in, actions out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailvault.gateway.pop3_wire import Command

# Replies, named once. Response codes in brackets are RFC 2449's and RFC 3206's.
OK_STLS = b"+OK Begin TLS negotiation\r\n"
OK_USER = b"+OK Send PASS\r\n"
OK_BYE = b"+OK Bye\r\n"
OK_CAPA = b"+OK Capability list follows\r\n"
ERR_TLS_FIRST = b"-ERR [AUTH] Start TLS first (STLS): no password is taken in plaintext\r\n"
ERR_NO_STLS = b"-ERR STLS is not offered here\r\n"
ERR_USER_FIRST = b"-ERR Send USER first\r\n"
ERR_NOT_NOW = b"-ERR Not in this state\r\n"
ERR_UNKNOWN = b"-ERR Unknown command\r\n"
ERR_ARGUMENTS = b"-ERR Wrong arguments\r\n"
ERR_TOO_LONG = b"-ERR Line too long\r\n"
ERR_TOO_MANY = b"-ERR [SYS/PERM] Too many commands, closing\r\n"
ERR_LOGIN = b"-ERR [AUTH] Wrong user name or password\r\n"


@dataclass(frozen=True)
class Send:
    """Write these bytes to the client."""

    data: bytes


@dataclass(frozen=True)
class StartTls:
    """Start TLS on the client connection now (the +OK has been sent), then call
    ``tls_started``."""


@dataclass(frozen=True)
class Close:
    """Close the client connection (after writing what was sent)."""


@dataclass(frozen=True)
class Login:
    """Check this user name and password; the machine waits for the answer."""

    user: str
    password: str = field(repr=False)


@dataclass
class LoginState:
    """What AUTHORIZATION knows: whether TLS is on, whether it may be started, whether a
    password may be taken without it, and the USER given."""

    tls_active: bool
    tls_available: bool
    plaintext_allowed: bool
    user: str | None = None
    failures: int = 0

    @property
    def may_log_in(self) -> bool:
        return self.tls_active or self.plaintext_allowed

    def capabilities(self, extra: tuple[bytes, ...]) -> bytes:
        """The CAPA response: STLS while it can be started, USER once a password may be
        taken, then ``extra`` (what the transaction state offers)."""
        lines = [OK_CAPA]
        if self.tls_available and not self.tls_active:
            lines.append(b"STLS\r\n")
        if self.may_log_in:
            lines.append(b"USER\r\n")
        lines += [name + b"\r\n" for name in extra]
        lines.append(b"RESP-CODES\r\n.\r\n")
        return b"".join(lines)

    def handle(self, command: Command, extra: tuple[bytes, ...]) -> list[Send | StartTls |
                                                                          Close | Login]:
        """The actions for one AUTHORIZATION command."""
        keyword, args = command.keyword, command.args
        if keyword == "CAPA":
            return [Send(self.capabilities(extra))]
        if keyword == "QUIT":
            return [Send(OK_BYE), Close()]
        if keyword == "STLS":
            if not self.tls_available or self.tls_active:
                return [Send(ERR_NO_STLS)]
            self.user = None
            return [Send(OK_STLS), StartTls()]
        if keyword == "USER":
            if not self.may_log_in:
                return [Send(ERR_TLS_FIRST)]
            if len(args) != 1:
                return [Send(ERR_ARGUMENTS)]
            self.user = args[0]
            return [Send(OK_USER)]
        if keyword == "PASS":
            if not self.may_log_in:
                return [Send(ERR_TLS_FIRST)]
            if self.user is None:
                return [Send(ERR_USER_FIRST)]
            user, self.user = self.user, None
            return [Login(user, args[0] if args else "")]
        if keyword in ("STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"):
            return [Send(ERR_NOT_NOW)]
        return [Send(ERR_UNKNOWN)]
