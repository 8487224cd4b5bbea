"""The SMTP proxy: a mail client submits through mailvault to its own provider, and every
message it sends is kept, encrypted, in a gateway mailbox.

The client side is the endpoint's SMTP session (``capture/session.py``) with TLS required
before AUTH; the user name ``remote_username%server%mailbox`` says where to relay and where to
keep the copy (``upstream.py``). At AUTH the proxy connects to the provider, if the allowlist
permits it, with implicit TLS (port 465) or STARTTLS and authenticates there as
``remote_username`` with the client's password (``smtp_upstream.Login`` refuses before any
credential if the provider offers no TLS); the provider's answer is the client's. MAIL and
RCPT are relayed one by one and answered with the provider's replies. A message is sealed and
written durably to the mailbox (staged, not yet visible) before DATA is sent upstream; the
provider's 250 makes the copy visible, any other answer removes it, and the client hears the
provider's reply either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field

from mailvault.capture import tls
from mailvault.capture.access import AccessPolicy
from mailvault.capture.client_text import for_log
from mailvault.capture.listen import parse_listen, show_listen
from mailvault.capture.services import ServeContext
from mailvault.capture.session import Client, SessionOptions, SmtpSession, Transaction
from mailvault.capture.smtp import Gate
from mailvault.capture.status import CaptureStatus
from mailvault.config import GatewaySettings, Settings
from mailvault.errors import (
    ConfigError,
    GatewayError,
    MailboxUnavailable,
    StorageFullError,
    StoreError,
)
from mailvault.gateway.mailboxes import GatewayMailboxes, Staged
from mailvault.gateway.smtp_upstream import (
    IMPLICIT_TLS_PORT,
    Login,
    LoginRefused,
    Reply,
    ReplyReader,
    Step,
    data_payload,
    mail_command,
    rcpt_command,
)
from mailvault.gateway.upstream import UpstreamPolicy, UpstreamTarget, parse_login

log = logging.getLogger(__name__)

# Replies of the proxy's own, named once.
BAD_LOGIN = "535 5.7.8 Authentication credentials invalid"
NOT_ALLOWED = "535 5.7.1 That server is not one this gateway may relay to"
NO_MAILBOX = "535 5.7.1 No active gateway mailbox by that id"
UPSTREAM_UNREACHABLE = "454 4.7.0 The provider cannot be reached now, try again later"
UPSTREAM_NO_TLS = "454 4.7.0 The provider offers no TLS: no password was sent to it"
UPSTREAM_LOST = "421 4.4.2 The connection to the provider was lost"
NOT_LOGGED_IN = "530 5.7.0 Authentication required"
MAILBOX_FULL = "452 4.3.1 The gateway cannot keep a copy now, try again later"
MAILBOX_FAILED = "451 4.3.0 The gateway cannot keep a copy now, try again later"
MAILBOX_GONE = "550 5.7.1 The gateway mailbox accepts no mail"
STOP_GRACE_S = 5.0


class UpstreamLost(GatewayError):
    """The provider closed the connection, sent garbage, or stopped answering."""


class Upstream:
    """One logged-in connection to a provider, used one command at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 extensions: dict[str, str], timeout_s: float) -> None:
        self.extensions = extensions
        self.in_transaction = False
        self._reader = reader
        self._writer = writer
        self._timeout_s = timeout_s
        self._replies = ReplyReader()
        self._ready: deque[Reply] = deque()

    @classmethod
    async def connect(cls, target: UpstreamTarget, port: int, password: bytes, *,
                      context: ssl.SSLContext, hostname: str,
                      timeout_s: float) -> Upstream:
        """Connect and log in; LoginRefused with the provider's refusal, GatewayError when
        it offers no TLS (nothing secret sent), UpstreamLost when it cannot be reached."""
        implicit = port == IMPLICIT_TLS_PORT
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                target.host, port, ssl=context if implicit else None,
                server_hostname=target.host if implicit else None), timeout_s)
        except (OSError, TimeoutError) as exc:
            raise UpstreamLost(f"{target.where(port)} cannot be reached: {exc}.") from exc
        upstream = cls(reader, writer, {}, timeout_s)
        login = Login(hostname, target.remote_username, password, implicit_tls=implicit)
        try:
            step = login.receive(await upstream.reply())
            while step is not Step.READY:
                if step is Step.START_TLS:
                    await asyncio.wait_for(writer.start_tls(
                        context, server_hostname=target.host), timeout_s)
                    step = login.tls_started()
                    continue
                step = login.receive(await upstream.exchange(login.outgoing))
        except (OSError, TimeoutError) as exc:
            await upstream.close()
            raise UpstreamLost(f"{target.where(port)}: {exc}.") from exc
        except GatewayError:
            await upstream.close()
            raise
        upstream.extensions = login.extensions
        return upstream

    async def reply(self) -> Reply:
        """The provider's next reply; UpstreamLost when it closes or stays silent."""
        while not self._ready:
            try:
                data = await asyncio.wait_for(self._reader.read(65536), self._timeout_s)
            except (OSError, TimeoutError) as exc:
                raise UpstreamLost(f"the provider stopped answering: {exc}.") from exc
            if not data:
                raise UpstreamLost("the provider closed the connection.")
            try:
                self._ready.extend(self._replies.feed(data))
            except GatewayError as exc:
                raise UpstreamLost(str(exc)) from exc
        return self._ready.popleft()

    async def exchange(self, line: bytes) -> Reply:
        """Send one command (or payload) and read its reply."""
        try:
            self._writer.write(line)
            await asyncio.wait_for(self._writer.drain(), self._timeout_s)
        except (OSError, TimeoutError) as exc:
            raise UpstreamLost(f"the provider stopped reading: {exc}.") from exc
        return await self.reply()

    async def close(self) -> None:
        """Say QUIT (without waiting long for the answer) and close."""
        with contextlib.suppress(OSError, TimeoutError, GatewayError):
            self._writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self._writer.drain(), 1.0)
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, ssl.SSLError):
            # A provider that never answers the TLS close would leave the transport open.
            self._writer.transport.abort()


@dataclass
class ProxyShared:
    """What every session of the proxy shares."""

    mailboxes: GatewayMailboxes
    policy: UpstreamPolicy
    gate: Gate
    status: CaptureStatus
    hostname: str
    timeout_s: float
    # The client context towards providers, built once (loading the system's CAs takes
    # milliseconds of CPU that every login would otherwise spend on the event loop).
    upstream_tls: ssl.SSLContext
    # The default port of a user name without one: implicit TLS.
    default_port: int = IMPLICIT_TLS_PORT
    sessions: set[SmtpSession] = field(default_factory=set)
    # Provider connections being closed after their client left (awaited at stop).
    closing: set[asyncio.Task[None]] = field(default_factory=set)

    def close_later(self, upstream: Upstream) -> None:
        """Close a provider connection without holding up the session that had it."""
        task = asyncio.get_running_loop().create_task(upstream.close())
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)


class ProxyHandler:
    """One client session's decisions: it holds that session's provider connection."""

    def __init__(self, shared: ProxyShared) -> None:
        self.shared = shared
        self.upstream: Upstream | None = None
        self.mailbox_id = ""

    def connected(self, session: SmtpSession) -> str | None:
        refusal = self.shared.gate.admit(session.client.address)
        if refusal is None:
            self.shared.sessions.add(session)
        return refusal

    def disconnected(self, session: SmtpSession) -> None:
        self.shared.sessions.discard(session)
        self.shared.gate.release(session.client.address)
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            self.shared.close_later(upstream)

    def refused(self, reason: str) -> None:
        self.shared.status.refused(reason)

    def failed(self, error: str) -> None:
        self.shared.status.internal_error(error)

    async def login(self, name: str, password: bytes) -> bool | str:
        shared = self.shared
        try:
            target = parse_login(name)
        except GatewayError:
            return BAD_LOGIN
        port = target.port or shared.default_port
        if not shared.policy.permits(target.host, port):
            shared.status.refused("upstream not allowed")
            return NOT_ALLOWED
        if not await self._mailbox_active(target.mailbox_id):
            return NO_MAILBOX
        try:
            self.upstream = await Upstream.connect(
                target, port, password, context=shared.upstream_tls,
                hostname=shared.hostname, timeout_s=shared.timeout_s)
        except LoginRefused as exc:
            return exc.reply.text()
        except UpstreamLost as exc:
            shared.status.error(f"SMTP proxy: {for_log(str(exc))}")
            return UPSTREAM_UNREACHABLE
        except GatewayError as exc:
            # No TLS offered, or no mechanism we may use: nothing secret was sent.
            shared.status.refused("upstream without TLS")
            log.warning("SMTP proxy to %s: %s", target.where(port), exc)
            return UPSTREAM_NO_TLS
        self.mailbox_id = target.mailbox_id
        return "235 2.7.0 Authentication successful"

    async def _mailbox_active(self, mailbox_id: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.shared.mailboxes.is_active, mailbox_id)

    async def sender(self, client: Client, address: str,
                     params: list[tuple[str, str]]) -> str | None:
        upstream = self.upstream
        if upstream is None:
            return NOT_LOGGED_IN
        try:
            if upstream.in_transaction:
                # The client reset (or a message was refused here): so must the provider.
                await upstream.exchange(b"RSET\r\n")
                upstream.in_transaction = False
            reply = await upstream.exchange(mail_command(address, params, upstream.extensions))
        except UpstreamLost:
            return self._lost()
        upstream.in_transaction = reply.ok
        return reply.text()

    async def recipient(self, client: Client, address: str) -> str | None:
        upstream = self.upstream
        if upstream is None:
            return NOT_LOGGED_IN
        try:
            return (await upstream.exchange(rcpt_command(address))).text()
        except UpstreamLost:
            return self._lost()

    async def deliver(self, client: Client, transaction: Transaction, raw: bytes) -> str:
        upstream = self.upstream
        if upstream is None:
            return NOT_LOGGED_IN
        loop = asyncio.get_running_loop()
        try:
            staged = await loop.run_in_executor(None, self.shared.mailboxes.stage,
                                                self.mailbox_id, raw)
        except MailboxUnavailable:
            self.shared.status.refused("gateway mailbox unavailable")
            return MAILBOX_GONE
        except StorageFullError as exc:
            self.shared.status.error(str(exc))
            return MAILBOX_FULL
        except (GatewayError, StoreError) as exc:
            self.shared.status.error(str(exc))
            return MAILBOX_FAILED
        assert staged is not None  # no delivery key: never "already stored"
        try:
            reply = await upstream.exchange(b"DATA\r\n")
            if reply.code == 354:
                reply = await upstream.exchange(data_payload(raw))
        except UpstreamLost:
            await loop.run_in_executor(None, staged.abandon)
            return self._lost()
        upstream.in_transaction = False
        await loop.run_in_executor(None, self._settle, staged, reply.ok)
        if reply.ok:
            self.shared.status.accepted("smtp-proxy")
        else:
            self.shared.status.refused("provider refused the message")
        return reply.text()

    def _settle(self, staged: Staged, sent: bool) -> None:
        """Keep the copy of a message the provider took; remove one it refused."""
        try:
            if sent:
                staged.commit()
            else:
                staged.abandon()
        except (GatewayError, StoreError) as exc:
            # The provider's answer stands either way: it is what happened to the message.
            self.shared.status.error(f"SMTP proxy: the copy in mailbox {self.mailbox_id} "
                                     f"could not be settled: {exc}")

    def _lost(self) -> str:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            self.shared.close_later(upstream)
        self.shared.status.error("SMTP proxy: the connection to a provider was lost.")
        return UPSTREAM_LOST


def server_context(settings: GatewaySettings) -> ssl.SSLContext:
    """The TLS context the proxy presents to clients ([gateway] tls_cert and tls_key)."""
    if not settings.tls_cert:
        raise ConfigError("the SMTP proxy needs [gateway] tls_cert and tls_key: clients "
                          "log in with their provider password.")
    return tls.server_context(settings.tls_cert, settings.tls_key, "[gateway]")


class SmtpProxy:
    """The SMTP proxy service of ``mailvault serve``: STARTTLS and implicit-TLS listeners."""

    name = "smtp-proxy"

    def __init__(self, settings: Settings, mailboxes: GatewayMailboxes,
                 status: CaptureStatus, listen: list[str], tls_listen: list[str]) -> None:
        gateway, smtp = settings.gateway, settings.smtp
        self.listen = listen
        self.tls_listen = tls_listen
        self.tls = server_context(gateway)
        # Message size, session limits, time-outs and the client allowlist are the SMTP
        # endpoint's ([smtp]): one set of bounds for every SMTP face of the vault.
        self.limit = min(smtp.max_message_mb, settings.ingest.max_message_mb) << 20
        self.smtp = smtp
        hostname = smtp.hostname or socket.gethostname()
        gate = Gate(AccessPolicy.from_settings(smtp), status,
                    max_connections=smtp.max_connections,
                    per_client=smtp.max_connections_per_client,
                    reserve=smtp.max_connections * smtp.connection_reserve_percent // 100)
        policy = UpstreamPolicy(tuple(gateway.upstream_allow), gateway.ca_file)
        # A bad ca_file is an error at start-up, not at a client's login.
        self.shared = ProxyShared(mailboxes, policy, gate, status, hostname, smtp.timeout_s,
                                  policy.tls_context())
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self) -> list[str]:
        """Open every listener; returns what listens ('smtp-proxy 127.0.0.1:1587'). First
        the copies a stopped proxy left staged are kept (``GatewayMailboxes.recover_staged``):
        whether their provider took them is not known, and a copy is never thrown away."""
        kept = await asyncio.get_running_loop().run_in_executor(
            None, self.shared.mailboxes.recover_staged)
        if kept:
            self.shared.status.error(
                f"SMTP proxy: kept {kept} staged copies a stop left behind (whether the "
                "provider took them is not known).")
        opened = [await self._open(text, implicit_tls=False) for text in self.listen]
        opened += [await self._open(text, implicit_tls=True) for text in self.tls_listen]
        return opened

    async def _open(self, text: str, implicit_tls: bool) -> str:
        host, port = parse_listen(text)
        smtp = self.smtp
        options = SessionOptions(
            hostname=self.shared.hostname, size_limit=self.limit, timeout_s=smtp.timeout_s,
            command_deadline_s=smtp.command_deadline_s, data_deadline_s=smtp.data_deadline_s,
            max_recipients=smtp.max_recipients,
            starttls=None if implicit_tls else self.tls,
            require_tls=True, auth="required")
        try:
            server = await asyncio.get_running_loop().create_server(
                lambda: SmtpSession(ProxyHandler(self.shared), options), host, port,
                ssl=self.tls if implicit_tls else None, reuse_address=True)
        except OSError as exc:
            raise ConfigError(f"the SMTP proxy cannot listen on {text}: {exc.strerror}.") from exc
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        kind = "smtp-proxy-tls" if implicit_tls else "smtp-proxy"
        return f"{kind} {show_listen(str(bound[0]), int(bound[1]))}"

    async def stop(self) -> None:
        """Stop listening; sessions get a moment to finish the message in hand."""
        for server in self._servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE_S
        while self.shared.sessions and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.shared.sessions):
            session.close()
        while self.shared.sessions and loop.time() < deadline + STOP_GRACE_S:
            await asyncio.sleep(0.01)  # each hang-up reaches connection_lost in a turn or two
        if self.shared.closing:
            await asyncio.gather(*self.shared.closing, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def smtp_proxy_service(context: ServeContext) -> SmtpProxy | None:
    """The SMTP proxy, unless no listen address is configured (or given with
    ``serve --smtp-proxy``)."""
    settings = context.vault.settings
    gateway = settings.gateway
    listen = context.overrides.get("smtp_proxy", gateway.smtp_proxy_listen)
    if not listen and not gateway.smtp_proxy_tls_listen:
        return None
    return SmtpProxy(settings, GatewayMailboxes.of(context.vault.path, gateway),
                     context.status, listen, gateway.smtp_proxy_tls_listen)
