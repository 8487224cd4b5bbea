"""The SMTP journal endpoint: sessions whose handler hands bytes + envelope to the spool.

``session.py`` speaks the protocol; this module decides: who may connect (554), how many at
once, in all and from one client address (421), which recipients (550), who may log in
(PLAIN/LOGIN only after TLS, users from ``smtp-users.json``), and it answers 250 only once the
spool has fsynced the message, 4xx when it cannot.

Gateway mailbox addresses (``ID@[gateway] domain``) are accepted destinations too: mail for
one goes to the gateway writer process (``gateway/writer_link.py``), which seals it to that
mailbox's public key in memory, stores it and replies once it is durable; mail for a journal
address goes to the spool as before, and a message for both goes to both, the spool first,
so that a 4xx never leaves a mailbox copy behind that the sender's retry would double (the
vault keeps one journal copy of a retried message by its hash). A suspended or unknown
mailbox address gets 550, decided here at RCPT. The endpoint never holds a mailbox password.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mailvault.accounts.throttle import SigninThrottle, client_key
from mailvault.capture.access import AccessPolicy
from mailvault.capture.listen import parse_listen, show_listen
from mailvault.capture.session import (
    Client,
    SessionOptions,
    SmtpSession,
    Transaction,
)
from mailvault.capture.spool import Spool
from mailvault.capture.status import CaptureStatus
from mailvault.capture.tls import server_context
from mailvault.capture.users import check_password, load_users
from mailvault.config import SmtpSettings
from mailvault.errors import (
    ConfigError,
    GatewayError,
    MailboxUnavailable,
    StorageFullError,
    StoreError,
)
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.gateway.writer_link import WriterLink
from mailvault.records import Provenance

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext

# Replies, named once.
ACCEPTED = "250 2.0.0 OK: stored"
REFUSE_CLIENT = "554 5.7.1 Your address may not send to this archive"
TOO_MANY = "421 4.7.0 Too many connections, try again later"
TOO_MANY_FROM_CLIENT = "421 4.7.0 Too many connections from your address, try again later"
REFUSE_RECIPIENT = "550 5.7.1 Recipient not accepted by this archive"
REFUSE_MAILBOX = "550 5.1.1 No such gateway mailbox, or it accepts no mail"
EMPTY_MESSAGE = "554 5.6.0 Empty message: nothing to archive"
SPOOL_FULL = "452 4.3.1 Insufficient storage for the archive, try again later"
SPOOL_FAILED = "451 4.3.0 The archive cannot store the message now, try again later"
STOP_GRACE_S = 5.0


@dataclass
class Gate:
    """Connection admission shared by all listeners: the allowlist, the connection limit, the
    limit per client address, and the last ``reserve`` slots, which go only to addresses that
    hold none yet, so clients from a few addresses (dripping bytes to hold their sessions)
    can never take every slot."""

    policy: AccessPolicy
    status: CaptureStatus
    max_connections: int
    per_client: int
    reserve: int
    sessions: set[SmtpSession] = field(default_factory=set)
    _held: Counter[str] = field(default_factory=Counter, init=False)
    _total: int = field(default=0, init=False)

    def admit(self, client: str) -> str | None:
        """The refusal to send, or None when the client may go on: it then holds a slot
        until ``release``."""
        if not self.policy.may_connect(client):
            self.status.refused("client not allowed")
            return REFUSE_CLIENT
        if self._total >= self.max_connections:
            self.status.refused("too many connections")
            return TOO_MANY
        key = client_key(client)
        held = self._held[key]
        if held >= self.per_client or (held and
                                       self.max_connections - self._total <= self.reserve):
            self.status.refused("too many connections from one address")
            return TOO_MANY_FROM_CLIENT
        self._held[key] = held + 1
        self._total += 1
        return None

    def release(self, client: str) -> None:
        """An admitted client's session has ended."""
        key = client_key(client)
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]
        self._total -= 1

    def close_all(self) -> None:
        """Hang up on every session (at shutdown, after a grace period)."""
        for session in list(self.sessions):
            session.close()


class CaptureHandler:
    """The endpoint's decisions for its sessions: admission, recipients, logins, and the
    durable hand-over to the spool."""

    def __init__(self, spool: Spool, status: CaptureStatus, gate: Gate,
                 users: dict[str, str], source: str,
                 mailboxes: GatewayMailboxes | None = None,
                 writer: WriterLink | None = None) -> None:
        self.spool = spool
        self.mailboxes = mailboxes
        self.writer = writer
        self.status = status
        self.gate = gate
        self.users = users
        self.source = source
        # Argon2 checks are slow on purpose; a login that succeeded once is remembered (by a
        # digest, never the password) so a client that logs in per message is not slowed.
        self._logged_in: set[bytes] = set()

    def connected(self, session: SmtpSession) -> str | None:
        refusal = self.gate.admit(session.client.address)
        if refusal is None:
            self.gate.sessions.add(session)
        return refusal

    def disconnected(self, session: SmtpSession) -> None:
        self.gate.sessions.discard(session)
        self.gate.release(session.client.address)

    def refused(self, reason: str) -> None:
        self.status.refused(reason)

    def failed(self, error: str) -> None:
        self.status.internal_error(error)

    async def sender(self, client: Client, address: str,
                     params: list[tuple[str, str]]) -> str | None:
        return None

    async def recipient(self, client: Client, address: str) -> str | None:
        if self._is_mailbox(address):
            assert self.mailboxes is not None
            if not self.mailboxes.accepts(address):
                self.status.refused("gateway mailbox unavailable")
                return REFUSE_MAILBOX
            return None
        if not self.gate.policy.accepts_recipient(address, client.address):
            self.status.refused("recipient not accepted")
            return REFUSE_RECIPIENT
        return None

    async def login(self, name: str, password: bytes) -> bool:
        digest = hashlib.sha256(name.encode() + b"\0" + password).digest()
        if digest in self._logged_in:
            return True
        text = password.decode("utf-8", "replace")
        # Argon2 takes tens of milliseconds: off the event loop, so other sessions go on.
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, check_password, self.users, name, text):
            self._logged_in.add(digest)
            return True
        return False

    async def deliver(self, client: Client, transaction: Transaction, raw: bytes) -> str:
        if not raw.strip():
            self.status.refused("empty message")
            return EMPTY_MESSAGE
        provenance = Provenance(
            kind="smtp",
            source=self.source,
            envelope_from=transaction.mail_from,
            envelope_to=tuple(transaction.rcpt_to),
            client_address=client.address,
            helo=client.helo,
            tls=client.tls,
            auth_user=client.user,
            received_at=datetime.now(UTC),
        )
        to_mailboxes = sorted({address.strip().strip("<>").rpartition("@")[0].lower()
                               for address in transaction.rcpt_to if self._is_mailbox(address)})
        to_journal = any(not self._is_mailbox(address) for address in transaction.rcpt_to)
        try:
            if to_journal:
                self._still_active(to_mailboxes)
                await self.spool.store(raw, provenance)
            if to_mailboxes:
                assert self.writer is not None
                await self.writer.deliver(to_mailboxes, raw)
        except (StoreError, GatewayError) as exc:
            return self._failed(exc)
        if to_mailboxes:
            self.status.accepted("gateway")
        if to_journal:
            self.status.accepted("smtp")
        return ACCEPTED

    def _still_active(self, mailbox_ids: list[str]) -> None:
        """MailboxUnavailable when one of the mailboxes was suspended or deleted since RCPT:
        asked before the journal copy is spooled, so that a 550 leaves no copy anywhere (the
        writer asks again, for a change in the instant between)."""
        for mailbox_id in mailbox_ids:
            assert self.mailboxes is not None
            if not self.mailboxes.is_active(mailbox_id):
                raise MailboxUnavailable(f"gateway mailbox {mailbox_id} accepts no mail.")

    def _failed(self, exc: StoreError | GatewayError) -> str:
        if isinstance(exc, StorageFullError):
            self.status.refused("spool full")
            self.status.error(str(exc))
            return SPOOL_FULL
        if isinstance(exc, MailboxUnavailable):
            # The mailbox was suspended or deleted between RCPT and the end of DATA.
            self.status.refused("gateway mailbox unavailable")
            return REFUSE_MAILBOX
        self.status.refused("spool failed")
        self.status.error(str(exc))
        return SPOOL_FAILED

    def _is_mailbox(self, address: str) -> bool:
        return self.mailboxes is not None and self.mailboxes.is_mailbox_address(address)


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """The server TLS context from tls_cert/tls_key, or None when none is configured."""
    if not settings.tls_cert:
        if settings.tls_key:
            raise ConfigError("[smtp] tls_key is set but tls_cert is not.")
        return None
    return server_context(settings.tls_cert, settings.tls_key, "[smtp]")


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
        self.gate = Gate(
            AccessPolicy.from_settings(self.settings), context.status,
            max_connections=self.settings.max_connections,
            per_client=self.settings.max_connections_per_client,
            reserve=self.settings.max_connections
            * self.settings.connection_reserve_percent // 100)
        self.users = load_users(context.vault.path) if self.settings.auth != "off" else {}
        self.hostname = self.settings.hostname or socket.gethostname()
        self.mailboxes = (GatewayMailboxes.of(context.vault.path, settings.gateway)
                          if settings.gateway.domain else None)
        # Mailbox mail is sealed and stored in a process of its own, on the other core.
        self.writer = (WriterLink(self.mailboxes.folder, self.mailboxes.domain,
                                  context.status.error)
                       if self.mailboxes is not None else None)
        # One count of failed logins per client for every listener of the endpoint.
        self.auth_throttle = SigninThrottle(self.settings.auth_attempts,
                                            self.settings.auth_window_minutes * 60.0)
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> list[str]:
        """Open every listener; returns what is listening ('smtp 127.0.0.1:2525')."""
        if self.writer is not None:
            await self.writer.start()
        opened = []
        try:
            for text in self.listen:
                opened.append(await self._open(text, implicit_tls=False))
            for text in self.settings.tls_listen:
                opened.append(await self._open(text, implicit_tls=True))
        except ConfigError:
            # serve stops only the services that started: this one would leave its writer.
            if self.writer is not None:
                await self.writer.stop()
            raise
        return opened

    async def _open(self, text: str, implicit_tls: bool) -> str:
        host, port = parse_listen(text)
        loop = asyncio.get_running_loop()
        source = "smtps" if implicit_tls else "smtp"
        handler = CaptureHandler(self.context.spool, self.context.status, self.gate,
                                 self.users, "", self.mailboxes, self.writer)
        options = SessionOptions(
            hostname=self.hostname,
            size_limit=self.limit,
            timeout_s=self.settings.timeout_s,
            command_deadline_s=self.settings.command_deadline_s,
            data_deadline_s=self.settings.data_deadline_s,
            max_recipients=self.settings.max_recipients,
            starttls=None if implicit_tls else self.tls,
            require_tls=self.settings.require_tls and not implicit_tls,
            auth=self.settings.auth,
            auth_throttle=self.auth_throttle,
        )
        try:
            server = await loop.create_server(lambda: SmtpSession(handler, options), host, port,
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
        if self.writer is not None:
            await self.writer.stop()


def smtp_service(context: ServeContext) -> SmtpEndpoint | None:
    """The SMTP endpoint, unless it is configured with no listen address."""
    listen = context.overrides.get("smtp", context.vault.settings.smtp.listen)
    if not listen and not context.vault.settings.smtp.tls_listen:
        return None
    return SmtpEndpoint(context, listen)

