"""Fixtures for live capture: a running `serve` on port 0 in a thread, TLS certificates made
here, message builders, and waiting (by polling, never by fixed sleeps) for the vault."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from mailvault.serve import serve
from mailvault.store import schema
from mailvault.vault import Vault
from mailvault.web.service import web_service
from tests.full_disk import tmpfs

READY_TIMEOUT_S = 30.0


@dataclass
class Running:
    """A `serve` running in a background thread; ``endpoints`` maps 'smtp' -> (host, port)."""

    vault: Vault
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    endpoints: dict[str, tuple[str, int]] = field(default_factory=dict)
    error: BaseException | None = None

    def port(self, kind: str = "smtp") -> int:
        return self.endpoints[kind][1]

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(60)
        if self.error is not None:
            raise self.error


def start_serving(vault: Vault, overrides: dict[str, list[str]] | None = None) -> Running:
    """Start `serve` for ``vault`` and wait until it listens."""
    ready = threading.Event()
    holder: dict[str, Running] = {}

    def on_ready(endpoints: list[str]) -> None:
        for endpoint in endpoints:
            kind, _, address = endpoint.partition(" ")
            host, _, port = address.rpartition(":")
            holder["running"].endpoints[kind] = (host.strip("[]"), int(port))
        ready.set()

    def run() -> None:
        loop = asyncio.new_event_loop()
        stop_event = asyncio.Event()
        holder["running"] = Running(vault, threading.current_thread(), loop, stop_event)
        started.set()
        try:
            # SMTP on a free port unless the test says where: never the default 2525,
            # which a test on the other worker may hold.
            loop.run_until_complete(serve(vault, stop_event,
                                          {"smtp": ["127.0.0.1:0"], **(overrides or {})},
                                          on_ready, faces=(web_service,)))
        except BaseException as exc:
            holder["running"].error = exc
            ready.set()
        finally:
            loop.close()

    started = threading.Event()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(READY_TIMEOUT_S)
    if not ready.wait(READY_TIMEOUT_S):
        raise TimeoutError("serve did not start listening")
    running = holder["running"]
    if running.error is not None:
        raise running.error
    return running


# Both listeners a web test drives: the pages, and SMTP to bring mail in while they are open.
WEB_AND_SMTP = {"smtp": ["127.0.0.1:0"], "web": ["127.0.0.1:0"]}


@contextlib.contextmanager
def running_serve(vault: Vault, overrides: dict[str, list[str]] | None = None) -> Iterator[Running]:
    """`serve` running on ``vault`` for the block, stopped when it ends."""
    running = start_serving(vault, overrides)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def serving(vault: Vault) -> Iterator[Callable[..., Running]]:
    """Start `serve` on the test's vault (stopped at the end of the test)."""
    started: list[Running] = []

    def start(overrides: dict[str, list[str]] | None = None) -> Running:
        running = start_serving(vault, overrides)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``check`` until it is true (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def message_count(vault: Vault) -> int:
    with vault.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.messages)).scalar()
                   or 0)


def build(subject: str, body: str = "Hello,\r\nthis is a test.\r\n",
          sender: str = "alice@example.org", to: str = "bob@example.org",
          extra_headers: str = "") -> bytes:
    """A small RFC 5322 message with CRLF line ends."""
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash(subject + body))}@example.org>\r\n"
            f"Date: Thu, 04 Mar 2021 10:30:00 +0000\r\n{extra_headers}"
            f"\r\n{body}").encode()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (named as IP and as DNS name)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("127.0.0.1"),
                x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Certificate(cert_path, key_path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: a real 'disk full' (needs root; skipped where mount is not allowed)."""
    with tmpfs(tmp_path / "small-disk", "1m") as folder:
        yield folder
