"""Gateway fixtures: the capture tests' running `serve` and certificate, a vault whose gateway
domain is set; for the POP3 tests, a test CA with the gateway's certificate, Debian's Dovecot
as the provider, real corpus messages, and gateway mailboxes in the test's temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.vault import Vault
from tests.capture.conftest import certificate, serving  # noqa: F401 (fixtures)
from tests.gateway.pop3_support import GatewayCertificate, make_certificate
from tests.sources.mailboxes import corpus_messages

DOMAIN = "gw.example.org"
# poplib refuses lines over 2,048 octets; the messages the POP3 tests use stay under it.
POPLIB_LINE = 2000


@pytest.fixture
def mailboxes(vault: Vault) -> GatewayMailboxes:
    """The vault's gateway mailboxes, with the gateway domain set (in memory) to DOMAIN."""
    vault.settings.gateway.domain = DOMAIN
    return GatewayMailboxes.of(vault.path, vault.settings.gateway)


@pytest.fixture(scope="session")
def gateway_certificate(tmp_path_factory: pytest.TempPathFactory) -> GatewayCertificate:
    """The gateway's certificate (127.0.0.1, localhost) and the CA that signed it."""
    return make_certificate(tmp_path_factory.mktemp("gateway-tls"))


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
    """An empty gateway mailbox folder of its own (no vault)."""
    return GatewayMailboxes(tmp_path / "gateway")
