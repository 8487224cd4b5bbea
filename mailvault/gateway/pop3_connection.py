"""The asyncio edge the POP3 service and the POP3 proxy share: one connection (either side)
with reads bounded in time, writes that wait for the peer to catch up, and TLS started in
place; the listeners and their sessions; and the TLS rule for listen addresses (no password
in plaintext except over loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable

from mailvault.capture import tls
from mailvault.capture.listen import parse_listen, show_listen
from mailvault.errors import ConfigError

READ_SIZE = 65536
# RFC 1939 3: an autologout timer of at least 10 minutes.
CLIENT_IDLE_S = 600.0
# A provider that says nothing for this long is given up on.
UPSTREAM_IDLE_S = 120.0
HANDSHAKE_S = 30.0
WRITE_HIGH_WATER = 256 * 1024
log = logging.getLogger(__name__)


class Connection:
    """One TCP (or TLS) connection as streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 idle_s: float) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_s = idle_s
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""

    @property
    def tls(self) -> bool:
        return self.writer.get_extra_info("ssl_object") is not None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.peer)

    async def read(self) -> bytes:
        """What arrived (b"" when the peer closed, or was silent for ``idle_s``)."""
        try:
            return await asyncio.wait_for(self.reader.read(READ_SIZE), self.idle_s)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            return b""

    async def send(self, data: bytes) -> None:
        """Write; past the transport's high-water mark, wait until the peer has taken most of
        it (a slow reader is not buffered for without bound)."""
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            await asyncio.wait_for(self.writer.drain(), self.idle_s)

    def pause_reading(self) -> None:
        """Read nothing more until TLS starts: after the +OK to STLS the client's TLS
        handshake may arrive at once, and it must reach TLS, not the plaintext reader."""
        transport = self.writer.transport
        if isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None = None
                        ) -> None:
        """TLS on this connection from now on (STLS), as server or client."""
        await self.writer.start_tls(context, server_hostname=server_hostname,
                                    ssl_handshake_timeout=HANDSHAKE_S)

    async def close(self) -> None:
        """Close; a peer that is gone already is no error."""
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 and ::1 (also as an IPv4-mapped address)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def server_tls(cert: str, key: str, section: str) -> ssl.SSLContext | None:
    """The server TLS context from a certificate and key file, or None without them."""
    if not cert:
        if key:
            raise ConfigError(f"[{section}] tls_key is set but tls_cert is not.")
        return None
    return tls.server_context(cert, key, f"[{section}]")


def check_listen(addresses: list[str], tls: ssl.SSLContext | None, what: str) -> None:
    """Without TLS a POP3 listener may only be on loopback: elsewhere no client could log in
    (no password is taken in plaintext there), so say so at start."""
    if tls is not None:
        return
    for text in addresses:
        host, _port = parse_listen(text)
        if not is_loopback(host) and host != "localhost":
            raise ConfigError(f"{what} on {text} needs [gateway] tls_cert and tls_key: "
                              "passwords are taken in plaintext only over loopback.")


Accept = Callable[[Connection, bool], Awaitable[None]]


class Listeners:
    """The listeners of one service (plaintext with STLS, and implicit TLS) and the sessions
    they run; ``stop`` gives sessions a moment, then drops them."""

    def __init__(self, kind: str, accept: Accept, idle_s: float) -> None:
        self.kind = kind
        self.accept = accept
        self.idle_s = idle_s
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task[None]] = set()

    async def open(self, text: str, implicit_tls: ssl.SSLContext | None) -> str:
        """Listen on ``text`` ('HOST:PORT'); returns 'KIND host:port' (KIND + 's' for TLS)."""
        host, port = parse_listen(text)

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._sessions.add(task)
            connection = Connection(reader, writer, self.idle_s)
            try:
                await self.accept(connection, implicit_tls is not None)
            except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
                log.info("%s session from %s ended: %s", self.kind, connection.peer,
                         type(exc).__name__)
            finally:
                self._sessions.discard(task)
                await connection.close()

        try:
            server = await asyncio.start_server(accepted, host, port, ssl=implicit_tls,
                                                reuse_address=True)
        except OSError as exc:
            raise ConfigError(f"{self.kind} cannot listen on {text}: {exc.strerror}.") from exc
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        suffix = "s" if implicit_tls is not None else ""
        return f"{self.kind}{suffix} {show_listen(str(bound[0]), int(bound[1]))}"

    async def stop(self, grace_s: float = 5.0) -> None:
        for server in self._servers:
            server.close()
        if self._sessions:
            await asyncio.wait(set(self._sessions), timeout=grace_s)
        left = set(self._sessions)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
