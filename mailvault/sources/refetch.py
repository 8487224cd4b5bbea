"""Fetching one recorded message of a source again: the retry of a failure.

A sync moves each folder's mark past a message that failed (a UID the server would not return,
one the pipeline refused as too large), so that one bad message cannot stop a folder, and
running the source again never asks for it. This asks for exactly that message: the IMAP UID
in its folder (only while the folder keeps the UIDVALIDITY it had: otherwise the UID names
nothing any more), or the POP3 message with that UIDL. What comes back carries the arrival's
recorded provenance, so archiving it settles the failure and adds no second arrival.
"""

from __future__ import annotations

import dataclasses

from mailvault.errors import NotFoundError, SourceError
from mailvault.records import Incoming, Provenance, Unreadable
from mailvault.sources import scope
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.imap import Endpoint, ImapSession
from mailvault.sources.pop3 import Pop3Session
from mailvault.sources.scope import Account
from mailvault.vault import Vault


def refetch(vault: Vault, spec: SourceSpec, recorded: Provenance) -> Incoming | Unreadable:
    """The message ``recorded`` names, fetched from the source again (Unreadable when the
    server still will not return it; NotFoundError when it is no longer there)."""
    account = _account(vault, spec, recorded)
    endpoint = scope.endpoint(spec, vault.settings.sync)
    if spec.kind == "pop3":
        return _pop3(endpoint, account, recorded)
    return _imap(endpoint, account, recorded)


def _account(vault: Vault, spec: SourceSpec, recorded: Provenance) -> Account:
    for account in scope.accounts_of(vault, spec):
        if account.address == recorded.account:
            return account
    raise NotFoundError(f"the account {recorded.account} is no longer in the scope of source "
                        f"{spec.name!r}.")


def _imap(endpoint: Endpoint, account: Account, recorded: Provenance) -> Incoming | Unreadable:
    if recorded.folder is None or recorded.uid is None:
        raise NotFoundError("the failure names no IMAP folder and UID to fetch again.")
    where = f"UID {recorded.uid} of {recorded.folder} ({account.address})"
    with ImapSession(endpoint, account.credentials) as session:
        try:
            folder = session.examine(recorded.folder)
        except SourceError as exc:
            if exc.retryable:
                raise
            raise NotFoundError(f"{where} cannot be fetched: the folder cannot be opened "
                                f"({exc}).") from exc
        if folder.uidvalidity != recorded.uidvalidity:
            raise NotFoundError(f"{where} no longer names the message: the folder's "
                                f"UIDVALIDITY changed from {recorded.uidvalidity} to "
                                f"{folder.uidvalidity} (a sync rescans the folder).")
        fetched = session.fetch([recorded.uid])
    if not fetched:
        raise NotFoundError(f"{where} is no longer at the source.")
    again = dataclasses.replace(recorded, internal_date=fetched[0].internal_date,
                                flags=fetched[0].flags)
    if fetched[0].raw is None:
        return Unreadable(again, fetched[0].reason)
    return Incoming(fetched[0].raw, again)


def _pop3(endpoint: Endpoint, account: Account, recorded: Provenance) -> Incoming | Unreadable:
    session = Pop3Session(endpoint, account.credentials)
    try:
        listed = next((m for m in session.listing() if m.uidl == recorded.item), None)
        if listed is None:
            raise NotFoundError(f"the message with UIDL {recorded.item} is no longer in the "
                                f"maildrop of {account.address}.")
        try:
            raw = session.retrieve(listed.number)
        except SourceError as exc:
            if exc.retryable:
                raise
            return Unreadable(recorded, f"the server refused to return it: {exc}")
        session.quit()
    finally:
        session.close()
    return Incoming(raw, recorded)
