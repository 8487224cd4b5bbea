"""Gateway fixtures: the capture tests' running `serve` and certificate, and a vault whose
gateway domain is set."""

from __future__ import annotations

import pytest

from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.vault import Vault
from tests.capture.conftest import certificate, serving  # noqa: F401 (fixtures)

DOMAIN = "gw.example.org"


@pytest.fixture
def mailboxes(vault: Vault) -> GatewayMailboxes:
    """The vault's gateway mailboxes, with the gateway domain set (in memory) to DOMAIN."""
    vault.settings.gateway.domain = DOMAIN
    return GatewayMailboxes.of(vault.path, vault.settings.gateway)
