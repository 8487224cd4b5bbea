"""Testing a source's connection: log in to each account it covers and look, reading nothing.

IMAP lists the folders (and says how many a sync would read), POP3 lists the maildrop. The
answer says, per account, whether the login worked and what was seen, or what went wrong in
the server's words (with the password scrubbed, as every SourceError is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailvault.errors import SourceError
from mailvault.sources import scope
from mailvault.sources.definitions import MAILDROP_KINDS, SourceSpec
from mailvault.sources.imap import Endpoint, ImapSession
from mailvault.sources.maildrop import list_maildrop
from mailvault.sources.scope import Account
from mailvault.vault import Vault

# A users or domain source may cover hundreds of mailboxes: a test logs in to the first few.
MAX_ACCOUNTS = 5


@dataclass(frozen=True)
class AccountCheck:
    """One account's login: ``ok`` and what was seen, or the error."""

    account: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class ConnectionCheck:
    """The test of one source: each account tried, and how many were left untried."""

    source: str
    where: str
    accounts: list[AccountCheck]
    untried: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.accounts) and all(a.ok for a in self.accounts)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "where": self.where, "ok": self.ok,
                "accounts": [a.to_json() for a in self.accounts], "untried": self.untried}


def probe(vault: Vault, spec: SourceSpec) -> ConnectionCheck:
    """Log in to the source's accounts (the first MAX_ACCOUNTS) and look around."""
    endpoint = scope.endpoint(spec, vault.settings.sync)
    where = f"{spec.kind} {endpoint.where} (TLS {spec.tls})"
    everyone = scope.accounts_of(vault, spec)
    checks = [_check(vault, spec, endpoint, account) for account in everyone[:MAX_ACCOUNTS]]
    return ConnectionCheck(spec.name, where, checks, max(0, len(everyone) - MAX_ACCOUNTS))


def _check(vault: Vault, spec: SourceSpec, endpoint: Endpoint, account: Account
           ) -> AccountCheck:
    try:
        detail = _pop3(vault, spec, endpoint, account) if spec.kind in MAILDROP_KINDS \
            else _imap(spec, endpoint, account)
    except SourceError as exc:
        return AccountCheck(account.address, False, str(exc))
    return AccountCheck(account.address, True, detail)


def _imap(spec: SourceSpec, endpoint: Endpoint, account: Account) -> str:
    with ImapSession(endpoint, account.credentials) as session:
        folders = scope.with_special_use(session.folders())
    read = [f for f in folders if not scope.wanted(f, spec)]
    return f"logged in; {len(folders)} folders, {len(read)} of them synced"


def _pop3(vault: Vault, spec: SourceSpec, endpoint: Endpoint, account: Account) -> str:
    listed = list_maildrop(vault, spec, endpoint, account.credentials)
    return f"logged in; {len(listed)} messages in the maildrop"
