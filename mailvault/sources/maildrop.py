"""A maildrop session for the sources read like POP3: a POP3 server, or a gateway mailbox.

A ``pop3`` source, and a ``gateway`` source with a host (a remote gateway's POP3 service),
get a ``Pop3Session``. A ``gateway`` source without a host reads this vault's own gateway
folder directly through ``GatewayMailboxes.unlock``: ``GatewayMaildrop`` offers the same
operations with the same promise, deletions are applied only at ``quit``, so a pull that
stops before it deletes nothing.
"""

from __future__ import annotations

from typing import Protocol

from mailvault.errors import GatewayError, IntegrityError, MailboxPasswordError, SourceError
from mailvault.gateway.mailboxes import GatewayMailboxes, OpenMailbox
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.imap import Credentials, Endpoint
from mailvault.sources.pop3 import Listed, Pop3Session
from mailvault.vault import Vault


class Maildrop(Protocol):
    """What the POP3 reader needs of a session."""

    def listing(self) -> list[Listed]: ...

    def retrieve(self, number: int) -> bytes: ...

    def delete(self, number: int) -> None: ...

    def quit(self) -> None: ...

    def close(self) -> None: ...


def open_maildrop(vault: Vault, spec: SourceSpec, endpoint: Endpoint,
                  credentials: Credentials) -> Maildrop:
    """A logged-in session on the source's maildrop (SourceError when it cannot be had)."""
    if spec.kind == "gateway" and not spec.host:
        mailboxes = GatewayMailboxes.of(vault.path, vault.settings.gateway)
        return GatewayMaildrop(mailboxes, credentials.user, credentials.password)
    return Pop3Session(endpoint, credentials)


def list_maildrop(vault: Vault, spec: SourceSpec, endpoint: Endpoint,
                  credentials: Credentials) -> list[Listed]:
    """Log in, list the maildrop (numbers, UIDLs, sizes), and log out."""
    session = open_maildrop(vault, spec, endpoint, credentials)
    try:
        listing = session.listing()
        session.quit()
    finally:
        session.close()
    return listing


class GatewayMaildrop:
    """A gateway mailbox of this vault, unlocked with its password, read as a maildrop."""

    def __init__(self, mailboxes: GatewayMailboxes, mailbox_id: str, password: str) -> None:
        self.where = f"gateway mailbox {mailbox_id}"
        try:
            self._open: OpenMailbox = mailboxes.unlock(mailbox_id, password)
        except MailboxPasswordError:
            raise SourceError(f"{self.where} refused the login: wrong password.") from None
        except GatewayError as exc:
            raise SourceError(f"{self.where} cannot be read: {exc}") from None
        self._listed: list[Listed] = []
        self._doomed: set[str] = set()

    def listing(self) -> list[Listed]:
        """The mailbox's messages, oldest first, numbered from 1 for this session."""
        self._listed = [Listed(number, message.uidl, message.size) for number, message
                        in enumerate(self._open.messages(), start=1)]
        return list(self._listed)

    def retrieve(self, number: int) -> bytes:
        """A message's raw bytes; a damaged one is refused (SourceError), never served."""
        listed = self._numbered(number)
        try:
            return self._open.read(listed.uidl)
        except (IntegrityError, GatewayError) as exc:
            raise SourceError(f"{self.where} cannot return message {listed.uidl}: {exc}") \
                from None

    def delete(self, number: int) -> None:
        """Mark a message for deletion; it is removed at quit()."""
        self._doomed.add(self._numbered(number).uidl)

    def quit(self) -> None:
        """Apply the deletions (durably)."""
        self._open.delete(sorted(self._doomed))
        self._doomed.clear()

    def close(self) -> None:
        """End the session; deletions not applied by quit() are forgotten."""
        self._doomed.clear()

    def _numbered(self, number: int) -> Listed:
        if not 1 <= number <= len(self._listed):
            raise SourceError(f"{self.where} has no message {number} in this session.")
        return self._listed[number - 1]
