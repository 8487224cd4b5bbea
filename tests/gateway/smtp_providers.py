"""SMTP providers for the proxy's tests and benchmark: Postfix's submission service with
Dovecot SASL (STARTTLS, AUTH only after TLS), a tiny provider without TLS that records every
line it hears, and the proxy itself running in a thread of its own."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mailvault.capture.status import CaptureStatus
from mailvault.config import Settings
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.gateway.smtp_proxy import SmtpProxy
from mailvault.gateway.smtp_upstream import IMPLICIT_TLS_PORT
from tests.capture.postfix import Postfix, start_postfix
from tests.sources import dovecot

# Dovecot's auth service, opened to Postfix's smtpd (which runs as the postfix user).
SASL_LISTENER = """
service auth {
  unix_listener {dir}/sasl {
    mode = 0666
  }
}
"""
REFUSED_SUBJECT = "refuse me"
REFUSAL_TEXT = "5.7.1 this provider refuses that subject"


@dataclass
class Provider:
    """A real submission service: Postfix on ``port`` (STARTTLS) and on ``smtps_address``
    port 465 (implicit TLS, Postfix's wrapper mode, certified by ``smtps_ca_file``), users
    in Dovecot."""

    postfix: Postfix
    dovecot: dovecot.Dovecot
    smtps_address: str
    smtps_ca_file: Path

    @property
    def port(self) -> int:
        return self.postfix.port

    @property
    def ca_file(self) -> Path:
        return self.dovecot.ca_file


def start_provider() -> Provider:
    """Dovecot (passwords) and Postfix submission (TLS required before AUTH, relays only
    for logged-in users, refuses any message whose Subject is REFUSED_SUBJECT at the end of
    DATA, and discards the rest)."""
    server = dovecot.start(extra=SASL_LISTENER)
    # Postfix's processes run as the postfix user: pytest's temp folders are private to
    # root, so the instance lives in Dovecot's folder, which they can enter.
    folder = server.dir
    checks = folder / "header_checks"
    checks.write_text(f"/^Subject: {REFUSED_SUBJECT}/ REJECT {REFUSAL_TEXT}\n")
    # The proxy takes port 465 for implicit TLS: a loopback address of its own (any of
    # 127/8 reaches this host) keeps that port free of other tests' servers.
    address = "127." + ".".join(str(secrets.randbelow(250) + 2) for _ in range(3))
    smtps = folder / "smtps"
    smtps_ca = dovecot.certificates(smtps, address)
    services = (f"{address}:{IMPLICIT_TLS_PORT} inet n - n - - smtpd\n"
                "  -o smtpd_tls_wrappermode=yes\n  -o smtpd_tls_security_level=encrypt\n"
                f"  -o smtpd_tls_cert_file={smtps / 'cert.pem'}\n"
                f"  -o smtpd_tls_key_file={smtps / 'key.pem'}\n")
    try:
        postfix = start_postfix(folder / "postfix", {
            "smtpd_tls_cert_file": str(server.dir / "cert.pem"),
            "smtpd_tls_key_file": str(server.dir / "key.pem"),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_auth_only": "yes",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(server.dir / "sasl"),
            "mynetworks": "",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "header_checks": f"regexp:{checks}",
            "mydestination": "", "relay_domains": "",
            "default_transport": "discard:relayed",
        }, services)
    except BaseException:
        dovecot.remove(server)
        raise
    return Provider(postfix, server, address, smtps_ca)


def stop_provider(provider: Provider) -> None:
    provider.postfix.stop()
    dovecot.remove(provider.dovecot)


@dataclass
class PlainProvider:
    """An SMTP server on ``port`` that offers no TLS at all (nor AUTH before it) and records
    every line a client sends: the proof that no password ever reached it."""

    port: int = 0
    lines: list[bytes] = field(default_factory=list)
    _listener: socket.socket | None = None

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as stream:
                stream.write(b"220 plain.test ESMTP\r\n")
                stream.flush()
                for line in stream:
                    self.lines.append(line)
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        stream.write(b"250-plain.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                    elif verb == b"QUIT":
                        stream.write(b"221 bye\r\n")
                        stream.flush()
                        break
                    else:
                        stream.write(b"235 ok\r\n" if verb == b"AUTH" else b"250 ok\r\n")
                    stream.flush()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()


@dataclass
class RunningProxy:
    port: int
    tls_port: int
    status: CaptureStatus


@contextmanager
def running_proxy(settings: Settings, mailboxes: GatewayMailboxes) -> Iterator[RunningProxy]:
    """The SMTP proxy on 127.0.0.1 (a STARTTLS and an implicit-TLS listener, port 0) in a
    thread with its own event loop."""
    loop = asyncio.new_event_loop()
    status = CaptureStatus()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[SmtpProxy, list[str]]:
        proxy = SmtpProxy(settings, mailboxes, status, ["127.0.0.1:0"], ["127.0.0.1:0"])
        return proxy, await proxy.start()

    proxy, endpoints = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    ports = [int(endpoint.rpartition(":")[2]) for endpoint in endpoints]
    try:
        yield RunningProxy(ports[0], ports[1], status)
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
