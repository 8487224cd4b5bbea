"""The gateway's POP3 proxy (`serve --pop3-proxy`, `[gateway] pop3_proxy_listen`): a mail client
reads its provider's mailbox through mailvault, and every message it retrieves is kept in a
gateway mailbox.

``pop3_proxy.py`` speaks the protocol; this module is the asyncio edge. Towards the client:
STLS (the gateway's certificate), required before PASS. Towards the provider: only servers
on the ``[gateway] upstream_allow`` list; implicit TLS (POP3S) is tried first, and if the
server does not speak TLS on that port the machine asks for STLS in plaintext and refuses
before any credential if it is not offered; the certificate is verified either way (a failed
verification is never retried in plaintext). Passwords never reach a log line.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailvault.errors import ConfigError, MailboxUnavailable, MailvaultError
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.gateway.pop3_connection import (
    CLIENT_IDLE_S,
    HANDSHAKE_S,
    UPSTREAM_IDLE_S,
    Connection,
    Listeners,
    server_tls,
)
from mailvault.gateway.pop3_login import Close, Send, StartTls
from mailvault.gateway.pop3_proxy import (
    POP3S_PORT,
    CloseUpstream,
    OpenUpstream,
    Pop3Proxy,
    ProxyAction,
    ProxyOptions,
    Side,
    StartUpstreamTls,
    Store,
    ToUpstream,
)
from mailvault.gateway.upstream import UpstreamPolicy, UpstreamTarget

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext

CONNECT_S = 30.0
STOP_GRACE_S = 5.0
ERR_NOT_ALLOWED = b"-ERR [AUTH] That provider is not on this gateway's list\r\n"
ERR_UNREACHABLE = b"-ERR [SYS/TEMP] The provider cannot be reached\r\n"
ERR_CERTIFICATE = b"-ERR [SYS/PERM] The provider's TLS certificate cannot be verified\r\n"
ERR_NO_MAILBOX = b"-ERR [AUTH] No such gateway mailbox, or it is suspended\r\n"
log = logging.getLogger(__name__)


class UpstreamRefused(Exception):
    """The provider is not connected to; ``reply`` says why (one -ERR line)."""

    def __init__(self, reply: bytes) -> None:
        super().__init__(reply.decode())
        self.reply = reply


@dataclass(frozen=True)
class ProxySettings:
    """What every session of the proxy shares."""

    mailboxes: GatewayMailboxes
    client_tls: ssl.SSLContext
    policy: UpstreamPolicy
    max_message_bytes: int


class Pop3ProxyService:
    """The POP3 proxy service of ``mailvault serve``: STLS and POP3S listeners."""

    name = "pop3-proxy"

    def __init__(self, settings: ProxySettings, listen: list[str],
                 tls_listen: list[str]) -> None:
        self.settings = settings
        self.listen = listen
        self.tls_listen = tls_listen
        # Made once: loading the system's CAs takes a good part of a second.
        self.upstream_tls = settings.policy.tls_context()
        self._listeners = Listeners("pop3-proxy", self._session, CLIENT_IDLE_S)

    async def start(self) -> list[str]:
        """Listen on every address; returns what listens ('pop3-proxy 127.0.0.1:1100')."""
        opened = [await self._listeners.open(text, None) for text in self.listen]
        return opened + [await self._listeners.open(text, self.settings.client_tls)
                         for text in self.tls_listen]

    async def stop(self) -> None:
        """Stop listening; sessions get a moment, then are dropped (no QUIT upstream, so
        the provider deletes nothing)."""
        await self._listeners.stop(STOP_GRACE_S)

    async def _session(self, client: Connection, implicit_tls: bool) -> None:
        session = ProxySession(self.settings, self.upstream_tls, client, implicit_tls)
        try:
            await session.run()
        finally:
            await session.close_upstream()


class ProxySession:
    """One client connection and, once it has logged in, its provider connection."""

    def __init__(self, settings: ProxySettings, upstream_tls: ssl.SSLContext,
                 client: Connection, implicit_tls: bool) -> None:
        self.settings = settings
        self.upstream_tls = upstream_tls
        self.client = client
        self.upstream: Connection | None = None
        self.upstream_host = ""
        self.machine = Pop3Proxy(ProxyOptions(
            tls_active=implicit_tls, tls_available=True,
            max_message_bytes=settings.max_message_bytes))
        self.closed = False

    async def run(self) -> None:
        await self._perform(self.machine.start())
        while not self.closed:
            side = self.machine.reading
            if side is Side.CLIENT:
                data = await self.client.read()
                if not data:
                    return  # the client is gone: no QUIT upstream, nothing deleted there
                await self._perform(self.machine.client_data(data))
            elif side is Side.UPSTREAM and self.upstream is not None:
                data = await self.upstream.read()
                actions = (self.machine.upstream_data(data) if data
                           else self.machine.upstream_closed())
                await self._perform(actions)
            else:
                raise RuntimeError(f"the POP3 proxy waits in {self.machine.phase}")

    async def close_upstream(self) -> None:
        """Close the provider connection (without QUIT, unless the client sent one)."""
        if self.upstream is not None:
            upstream, self.upstream = self.upstream, None
            await upstream.close()

    async def _perform(self, actions: list[ProxyAction]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, Send):
                if queue and isinstance(queue[0], StartTls):
                    self.client.pause_reading()
                await self.client.send(action.data)
            elif isinstance(action, ToUpstream):
                assert self.upstream is not None
                await self.upstream.send(action.data)
            elif isinstance(action, Close):
                self.closed = True
            elif isinstance(action, StartTls):
                await self.client.start_tls(self.settings.client_tls)
                queue += self.machine.client_tls_started()
            elif isinstance(action, OpenUpstream):
                queue += await self._open(action.target)
            elif isinstance(action, StartUpstreamTls):
                queue += await self._upstream_tls()
            elif isinstance(action, CloseUpstream):
                await self.close_upstream()
            elif isinstance(action, Store):
                queue += await self._store(action)

    async def _open(self, target: UpstreamTarget) -> list[ProxyAction]:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._check_mailbox, target.mailbox_id)
        except MailvaultError:
            return self.machine.upstream_failed(ERR_NO_MAILBOX)
        where = target.where(POP3S_PORT)
        try:
            self.upstream, tls = await self._connect(target)
        except UpstreamRefused as refused:
            log.info("POP3 proxy: %s for %s refused: %s", where, self.client.peer, refused)
            return self.machine.upstream_failed(refused.reply)
        log.info("POP3 proxy: %s -> %s (%s) for mailbox %s", self.client.peer, where,
                 "POP3S" if tls else "plaintext, STLS required", target.mailbox_id)
        return self.machine.upstream_connected(tls)

    async def _connect(self, target: UpstreamTarget) -> tuple[Connection, bool]:
        host, port = target.host, target.port or POP3S_PORT
        if not self.settings.policy.permits(host, port):
            raise UpstreamRefused(ERR_NOT_ALLOWED)
        self.upstream_host = host
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=self.upstream_tls, server_hostname=host,
                ssl_handshake_timeout=HANDSHAKE_S), CONNECT_S)
            return Connection(reader, writer, UPSTREAM_IDLE_S), True
        except ssl.SSLCertVerificationError as exc:
            raise UpstreamRefused(ERR_CERTIFICATE) from exc
        except (ssl.SSLError, ConnectionResetError):
            pass  # no TLS on this port: plaintext, where the machine insists on STLS
        except (OSError, TimeoutError) as exc:
            raise UpstreamRefused(ERR_UNREACHABLE) from exc
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    CONNECT_S)
        except (OSError, TimeoutError) as exc:
            raise UpstreamRefused(ERR_UNREACHABLE) from exc
        return Connection(reader, writer, UPSTREAM_IDLE_S), False

    async def _upstream_tls(self) -> list[ProxyAction]:
        assert self.upstream is not None
        try:
            await self.upstream.start_tls(self.upstream_tls,
                                          server_hostname=self.upstream_host)
        except ssl.SSLCertVerificationError:
            return self.machine.upstream_failed(ERR_CERTIFICATE)
        except (ssl.SSLError, OSError, TimeoutError):
            return self.machine.upstream_failed(ERR_UNREACHABLE)
        return self.machine.upstream_tls_started()

    async def _store(self, store: Store) -> list[ProxyAction]:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._deliver, store)
        except MailvaultError as exc:
            log.warning("POP3 proxy: no copy kept in mailbox %s: %s", store.mailbox_id, exc)
            return self.machine.store_failed(b"The gateway cannot keep a copy now")
        return self.machine.stored()

    def _check_mailbox(self, mailbox_id: str) -> None:
        """MailboxUnavailable unless the mailbox exists and accepts mail (checked before the
        provider is contacted, so that a typo costs no provider login). Reads the mailbox's
        record only: listing its mail would cost a login more the more the mailbox holds."""
        if not self.settings.mailboxes.is_active(mailbox_id):
            raise MailboxUnavailable(f"gateway mailbox {mailbox_id} is unknown or suspended.")

    def _deliver(self, store: Store) -> None:
        self.settings.mailboxes.deliver(store.mailbox_id, store.raw, key=store.key)


def pop3_proxy_service(context: ServeContext) -> Pop3ProxyService | None:
    """The POP3 proxy, unless no address is configured."""
    vault = context.vault
    settings = vault.settings.gateway
    listen = context.overrides.get("pop3-proxy", settings.pop3_proxy_listen)
    tls_listen = settings.pop3_proxy_tls_listen
    if not listen and not tls_listen:
        return None
    tls = server_tls(settings.tls_cert, settings.tls_key, "gateway")
    if tls is None:
        raise ConfigError("The POP3 proxy needs [gateway] tls_cert and tls_key: clients "
                          "send their provider password to it.")
    return Pop3ProxyService(ProxySettings(
        GatewayMailboxes.of(context.vault.path, settings), tls,
        UpstreamPolicy(tuple(settings.upstream_allow), settings.ca_file),
        vault.settings.ingest.max_message_mb * 1024 * 1024), listen, tls_listen)
