"""The SMTP journal endpoint: aiosmtpd sessions whose handler hands bytes + envelope to the spool.

aiosmtpd speaks the protocol (EHLO, SIZE, 8BITMIME, SMTPUTF8, STARTTLS, AUTH, dot-unstuffing);
this module decides: who may connect (554), how many at once (421), which recipients (550),
who may log in (PLAIN/LOGIN only after TLS, users from ``smtp-users.json``), and it answers 250
only once the spool has fsynced the message, 4xx when it cannot.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailvault.capture.access import AccessPolicy
from mailvault.capture.listen import parse_listen, show_listen
from mailvault.capture.spool import Spool
from mailvault.capture.status import CaptureStatus
from mailvault.capture.users import check_password, load_users
from mailvault.config import SmtpSettings
from mailvault.errors import ConfigError, StorageFullError, StoreError
from mailvault.ingest.provenance import Provenance

if TYPE_CHECKING:
    from mailvault.serve import ServeContext

# Replies, named once.
ACCEPTED = "250 2.0.0 OK: stored"
REFUSE_CLIENT = "554 5.7.1 Your address may not send to this archive"
TOO_MANY = "421 4.7.0 Too many connections, try again later"
REFUSE_RECIPIENT = "550 5.7.1 Recipient not accepted by this archive"
RECIPIENT_OK = "250 2.1.5 OK"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
EMPTY_MESSAGE = "554 5.6.0 Empty message: nothing to archive"
SPOOL_FULL = "452 4.3.1 Insufficient storage for the archive, try again later"
SPOOL_FAILED = "451 4.3.0 The archive cannot store the message now, try again later"
AUTH_MECHANISMS = ("PLAIN", "LOGIN")
STOP_GRACE_S = 5.0
# Real mail has lines longer than RFC 5321's 1,000 octets; refusing them with a permanent 500
# would lose them, so lines are limited only by the message size limit and this bound.
LINE_LIMIT = 1 << 20


@dataclass
class Gate:
    """Connection admission shared by all listeners: allowlist and connection limit."""

    policy: AccessPolicy
    max_connections: int
    status: CaptureStatus
    sessions: set[asyncio.BaseTransport] = field(default_factory=set)

    def admit(self, client: str) -> str | None:
        """The refusal to send, or None when the client may go on (then counted as open)."""
        if not self.policy.may_connect(client):
            self.status.refused("client not allowed")
            return REFUSE_CLIENT
        if len(self.sessions) >= self.max_connections:
            self.status.refused("too many connections")
            return TOO_MANY
        return None

    def close_all(self) -> None:
        """Hang up on every session (at shutdown, after a grace period)."""
        for transport in list(self.sessions):
            transport.close()


class CaptureSMTP(SMTP):
    """aiosmtpd's SMTP session with admission at connect (before the greeting)."""

    line_length_limit = LINE_LIMIT

    def __init__(self, handler: CaptureHandler, gate: Gate, **options: Any) -> None:
        super().__init__(handler, **options)
        self._gate = gate
        self._admitted = False
        self._turned_away = False
        self._transport_at_connect: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._admitted:
            peer = transport.get_extra_info("peername") or ("", 0)
            refusal = self._gate.admit(str(peer[0]))
            if refusal is not None:
                self._turned_away = True
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(refusal.encode() + b"\r\n")
                transport.close()
                return
            self._admitted = True
            self._gate.sessions.add(transport)
            self._transport_at_connect = transport
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._turned_away:
            return
        if self._transport_at_connect is not None:
            self._gate.sessions.discard(self._transport_at_connect)
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self._turned_away:
            return False
        return super().eof_received()


class CaptureHandler:
    """aiosmtpd handler: recipient policy, AUTH check, and the durable hand-over to the spool."""

    def __init__(self, spool: Spool, status: CaptureStatus, policy: AccessPolicy,
                 users: dict[str, str], source: str, auth: str) -> None:
        self.spool = spool
        self.status = status
        self.policy = policy
        self.users = users
        self.source = source
        self.auth = auth
        # Argon2 checks are slow on purpose; a login that succeeded once is remembered (by a
        # digest, never the password) so a client that logs in per message is not slowed.
        self._logged_in: set[bytes] = set()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.auth == "off":
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.auth == "required" and not session.authenticated:
            self.status.refused("not authenticated")
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        client = str((session.peer or ("",))[0])
        if not self.policy.accepts_recipient(address, client):
            self.status.refused("recipient not accepted")
            return REFUSE_RECIPIENT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not raw.strip():
            self.status.refused("empty message")
            return EMPTY_MESSAGE
        peer = session.peer or ("", 0)
        provenance = Provenance(
            kind="smtp",
            source=self.source,
            # The null sender of bounces and receipts is kept as "" (aiosmtpd says "<>").
            envelope_from="" if envelope.mail_from in (None, "<>") else envelope.mail_from,
            envelope_to=tuple(envelope.rcpt_tos),
            client_address=str(peer[0]),
            helo=session.host_name or None,
            tls=_tls_of(server),
            auth_user=_user_of(session),
            received_at=datetime.now(UTC),
        )
        try:
            await self.spool.store(raw, provenance)
        except StorageFullError as exc:
            self.status.refused("spool full")
            self.status.error(str(exc))
            return SPOOL_FULL
        except StoreError as exc:
            self.status.refused("spool failed")
            self.status.error(str(exc))
            return SPOOL_FAILED
        self.status.accepted("smtp")
        return ACCEPTED

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, auth_data: Any) -> AuthResult:
        """aiosmtpd authenticator: PLAIN/LOGIN against the vault's SMTP users."""
        if mechanism not in AUTH_MECHANISMS or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        digest = hashlib.sha256(name.encode() + b"\0" + auth_data.password).digest()
        if digest in self._logged_in or check_password(self.users, name, password):
            self._logged_in.add(digest)
            return AuthResult(success=True, auth_data=name)
        self.status.refused("authentication failed")
        return AuthResult(success=False, handled=False)


def _tls_of(server: SMTP) -> str | None:
    transport = server.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    cipher = ssl_object.cipher()
    return f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()


def _user_of(session: Session) -> str | None:
    if not session.authenticated:
        return None
    return str(session.auth_data) if session.auth_data is not None else None


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """The server TLS context from tls_cert/tls_key, or None when none is configured."""
    if not settings.tls_cert:
        if settings.tls_key:
            raise ConfigError("[smtp] tls_key is set but tls_cert is not.")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[smtp] tls_cert/tls_key cannot be loaded: {exc}.") from exc
    return context


class SmtpEndpoint:
    """The SMTP service of ``mailvault serve``: plain/STARTTLS and implicit-TLS listeners."""

    name = "smtp"

    def __init__(self, context: ServeContext, listen: list[str]) -> None:
        settings = context.vault.settings
        self.settings = settings.smtp
        self.listen = listen
        self.context = context
        if self.settings.auth not in ("off", "optional", "required"):
            raise ConfigError("[smtp] auth must be off, optional or required.")
        self.tls = tls_context(self.settings)
        if self.tls is None and (self.settings.require_tls or self.settings.tls_listen
                                 or self.settings.auth == "required"):
            raise ConfigError("[smtp] require_tls, tls_listen and auth = required need "
                              "tls_cert and tls_key.")
        self.limit = min(self.settings.max_message_mb,
                         settings.ingest.max_message_mb) * 1024 * 1024
        self.gate = Gate(AccessPolicy.from_settings(self.settings),
                         self.settings.max_connections, context.status)
        self.users = load_users(context.vault.path) if self.settings.auth != "off" else {}
        self.hostname = self.settings.hostname or socket.gethostname()
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> list[str]:
        """Open every listener; returns what is listening ('smtp 127.0.0.1:2525')."""
        opened = []
        for text in self.listen:
            opened.append(await self._open(text, implicit_tls=False))
        for text in self.settings.tls_listen:
            opened.append(await self._open(text, implicit_tls=True))
        return opened

    async def _open(self, text: str, implicit_tls: bool) -> str:
        host, port = parse_listen(text)
        loop = asyncio.get_running_loop()
        source = "smtps" if implicit_tls else "smtp"
        handler = CaptureHandler(self.context.spool, self.context.status, self.gate.policy,
                                 self.users, "", self.settings.auth)

        def session() -> CaptureSMTP:
            return CaptureSMTP(
                handler, self.gate,
                data_size_limit=self.limit,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname=self.hostname,
                ident="mailvault",
                tls_context=None if implicit_tls else self.tls,
                require_starttls=self.settings.require_tls and not implicit_tls,
                timeout=self.settings.timeout_s,
                # An implicit-TLS connection is encrypted from the first byte.
                auth_require_tls=not implicit_tls,
                auth_exclude_mechanism=[] if self.settings.auth != "off"
                else list(AUTH_MECHANISMS),
                authenticator=handler.authenticate,
                loop=loop,
            )

        try:
            server = await loop.create_server(session, host, port,
                                              ssl=self.tls if implicit_tls else None,
                                              reuse_address=True)
        except OSError as exc:
            raise ConfigError(f"SMTP cannot listen on {text}: {exc.strerror}.") from exc
        bound = server.sockets[0].getsockname()
        address = show_listen(str(bound[0]), int(bound[1]))
        handler.source = address
        self._servers.append(server)
        return f"{source} {address}"

    async def stop(self) -> None:
        """Stop listening; sessions get a moment to finish the message in hand."""
        for server in self._servers:
            server.close()
        deadline = asyncio.get_running_loop().time() + STOP_GRACE_S
        while self.gate.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        self.gate.close_all()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def smtp_service(context: ServeContext) -> SmtpEndpoint | None:
    """The SMTP endpoint, unless it is configured with no listen address."""
    listen = context.overrides.get("smtp", context.vault.settings.smtp.listen)
    if not listen and not context.vault.settings.smtp.tls_listen:
        return None
    return SmtpEndpoint(context, listen)

