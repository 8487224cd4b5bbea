"""Fixtures for the gateway's POP3 tests: a test CA and certificate, Debian's Dovecot as the
provider, real corpus messages, and gateway mailboxes in the test's temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.gateway.mailboxes import GatewayMailboxes
from tests.gateway.pop3_support import GatewayCertificate, make_certificate
from tests.sources import dovecot
from tests.sources.mailboxes import corpus_messages

# poplib refuses lines over 2,048 octets; the messages these tests use stay under it.
POPLIB_LINE = 2000


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> GatewayCertificate:
    """The gateway's certificate (127.0.0.1, localhost) and its CA."""
    return make_certificate(tmp_path_factory.mktemp("gateway-tls"))


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[dovecot.Dovecot]:
    """Debian's Dovecot with POP3 (STLS) and POP3S on free loopback ports."""
    server = dovecot.start()
    try:
        yield server
    finally:
        dovecot.remove(server)


@pytest.fixture(scope="session")
def pop3_messages(corpus: Path) -> list[bytes]:
    """Forty real messages (CRLF) whose lines poplib can read, and one whose lines start
    with dots (byte-stuffing)."""
    found = [b"Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n...\r\nend\r\n"]
    for raw in corpus_messages(corpus):
        if max(len(line) for line in raw.split(b"\r\n")) < POPLIB_LINE:
            found.append(raw)
        if len(found) == 41:
            break
    return found


@pytest.fixture
def gateway(tmp_path: Path) -> GatewayMailboxes:
    """An empty gateway mailbox folder."""
    return GatewayMailboxes(tmp_path / "gateway")
