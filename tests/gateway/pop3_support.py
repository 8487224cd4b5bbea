"""Support for the POP3 service and proxy tests: a service run in its own event loop in a
thread (so that poplib can talk to it from the test), and a test CA with a certificate for
127.0.0.1 and localhost."""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mailvault.capture.services import Service
from tests.sources import dovecot

READY_TIMEOUT_S = 30.0


@dataclass
class Running:
    """A started service: ``address`` is (host, port) of its first listener."""

    service: Service
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    endpoints: list[str] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.endpoints[0].partition(" ")[2].rpartition(":")
        return host.strip("[]"), int(port)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def run_service(service: Service) -> Running:
    """Start ``service`` in a new event loop in a background thread; wait until it listens."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    endpoints = asyncio.run_coroutine_threadsafe(service.start(), loop).result(
        READY_TIMEOUT_S)
    return Running(service, loop, thread, endpoints)


@dataclass(frozen=True)
class GatewayCertificate:
    """A server certificate for 127.0.0.1 and localhost, and the CA that signed it."""

    cert: Path
    key: Path
    ca: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_certificate(folder: Path) -> GatewayCertificate:
    folder.mkdir(parents=True, exist_ok=True)
    ca = dovecot._certificates(folder)  # the test CA and certificate Dovecot uses too
    return GatewayCertificate(folder / "cert.pem", folder / "key.pem", ca)
