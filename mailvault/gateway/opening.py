"""Where a vault's gateway mailboxes are: ``[gateway] folder``, or VAULT/gateway."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mailvault.gateway.mailboxes import GatewayMailboxes

if TYPE_CHECKING:
    from mailvault.vault import Vault


def mailboxes_of(vault: Vault) -> GatewayMailboxes:
    """The gateway mailboxes configured for ``vault``."""
    settings = vault.settings.gateway
    folder = Path(settings.folder) if settings.folder else vault.path / "gateway"
    return GatewayMailboxes(folder, settings.domain)
