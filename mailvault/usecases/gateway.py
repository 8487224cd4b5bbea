"""Gateway mailboxes: create, list, show, suspend, resume, delete, change a password.

Listing and showing need MONITOR (states and counts, never mail: as ``status``) and are not
audited; every change needs SETTINGS and is audited once under the principal's name
(``gateway-mailbox create`` and so on, with the mailbox id, never a password). A mailbox's
password is made by ``create``, returned once and kept nowhere: a lost password means the
mailbox's mail is lost.
"""

from __future__ import annotations

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.gateway.mailboxes import ACTIVE, SUSPENDED, GatewayMailboxes, MailboxInfo
from mailvault.gateway.sealing import new_password
from mailvault.store import audit
from mailvault.vault import Vault

__all__ = ["MailboxInfo", "change_password", "create_mailbox", "delete_mailbox",
           "list_mailboxes", "new_password", "set_state", "show_mailbox"]


def mailboxes_of(vault: Vault) -> GatewayMailboxes:
    """The vault's gateway mailboxes, as ``[gateway]`` places them."""
    return GatewayMailboxes.of(vault.path, vault.settings.gateway)


def create_mailbox(vault: Vault, who: Principal, name: str | None = None
                   ) -> tuple[MailboxInfo, str]:
    """A new mailbox and its one-time password (the caller shows it once)."""
    require(who, Permission.SETTINGS)
    info, password = mailboxes_of(vault).create(name)
    _audit(vault, who, "gateway-mailbox create", info.id, name=info.name)
    return info, password


def list_mailboxes(vault: Vault, who: Principal) -> list[MailboxInfo]:
    """Every mailbox: state, count, bytes, oldest message, last pull."""
    require(who, Permission.MONITOR)
    return mailboxes_of(vault).every()


def show_mailbox(vault: Vault, who: Principal, mailbox_id: str) -> MailboxInfo:
    """One mailbox (MailboxUnavailable when there is none by that id)."""
    require(who, Permission.MONITOR)
    return mailboxes_of(vault).get(mailbox_id)


def set_state(vault: Vault, who: Principal, mailbox_id: str, suspended: bool) -> MailboxInfo:
    """Suspend a mailbox (it takes no new mail; it can still be drained) or resume it."""
    require(who, Permission.SETTINGS)
    info = mailboxes_of(vault).set_state(mailbox_id, SUSPENDED if suspended else ACTIVE)
    _audit(vault, who, "gateway-mailbox suspend" if suspended else "gateway-mailbox resume",
           mailbox_id)
    return info


def delete_mailbox(vault: Vault, who: Principal, mailbox_id: str) -> None:
    """Delete a mailbox that is suspended and empty."""
    require(who, Permission.SETTINGS)
    mailboxes_of(vault).delete(mailbox_id)
    _audit(vault, who, "gateway-mailbox delete", mailbox_id)


def change_password(vault: Vault, who: Principal, mailbox_id: str, old: str, new: str) -> None:
    """Re-wrap a mailbox's key under a new password (the old one must unlock it); its mail
    stays readable with the new password, and no longer with the old one."""
    require(who, Permission.SETTINGS)
    mailboxes_of(vault).change_password(mailbox_id, old, new)
    _audit(vault, who, "gateway-mailbox passwd", mailbox_id)


def _audit(vault: Vault, who: Principal, action: str, mailbox_id: str, **detail: str) -> None:
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, action, {"mailbox": mailbox_id, **detail})
