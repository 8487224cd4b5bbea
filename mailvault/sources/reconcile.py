"""The proof that the archive matches the source: per folder, the messages at the source in
scope, how many are archived, which failed (and why), which are missing (and why)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from mailvault.errors import SourceError
from mailvault.records import Provenance
from mailvault.sources import scope, state
from mailvault.sources.definitions import MAILDROP_KINDS, SourceSpec
from mailvault.sources.imap import Endpoint, ImapSession
from mailvault.sources.maildrop import list_maildrop
from mailvault.sources.pop3_reader import FOLDER as POP3_FOLDER
from mailvault.sources.scope import Account
from mailvault.sources.state import FolderMark
from mailvault.store import audit, schema
from mailvault.vault import Vault

# Where a message sits at the source: (UIDVALIDITY, UID) for IMAP, ("", UIDL) for POP3.
Place = tuple[int | str, int | str]


@dataclass
class FolderBalance:
    """One folder: counted at the source and in the vault."""

    account: str
    folder: str
    uidvalidity: int | None
    at_source: int = 0
    archived: int = 0
    failed: list[tuple[int | str, str]] = field(default_factory=list)
    missing: list[tuple[int | str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.failed

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "folder": self.folder,
                "uidvalidity": self.uidvalidity, "at_source": self.at_source,
                "archived": self.archived, "failed": len(self.failed),
                "missing": len(self.missing),
                "failed_items": [{"uid": u, "reason": r} for u, r in self.failed],
                "missing_items": [{"uid": u, "reason": r} for u, r in self.missing]}


@dataclass
class Reconciliation:
    """Every folder in scope of one source, and accounts that could not be read."""

    source: str
    folders: list[FolderBalance] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # Folders archived before that are no longer at the source: (account, folder, what).
    departed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors and all(f.complete for f in self.folders)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "complete": self.complete,
                "folders": [f.to_json() for f in self.folders],
                "errors": [{"account": a, "error": e} for a, e in self.errors.items()],
                "departed": [{"account": a, "folder": f, "what": w}
                             for a, f, w in self.departed]}


def reconcile(vault: Vault, spec: SourceSpec, actor: str) -> Reconciliation:
    """Count every folder in scope at the source against what the vault holds (audited)."""
    result = Reconciliation(spec.name)
    endpoint = Endpoint(spec.host, spec.port, spec.tls, spec.ca_file, spec.insecure_skip_verify,
                        vault.settings.sync.timeout_s)
    for account in scope.accounts_of(vault, spec):
        try:
            if spec.kind in MAILDROP_KINDS:
                result.folders.append(_pop3(vault, spec, endpoint, account))
            else:
                result.folders += _imap(vault, spec, endpoint, account)
                result.departed += _departed(vault, spec, account.address)
        except SourceError as exc:
            result.errors[account.address] = str(exc)
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "source-reconcile", {
            "source": spec.name, "complete": result.complete,
            "missing": sum(len(f.missing) for f in result.folders),
            "failed": sum(len(f.failed) for f in result.folders)})
    return result


def _imap(vault: Vault, spec: SourceSpec, endpoint: Endpoint,
          account: Account) -> list[FolderBalance]:
    archived, failed = _recorded(vault, spec, account.address)
    with vault.engine.connect() as conn:
        marks = state.folder_marks(conn, spec.name, account.address)
    balances = []
    with ImapSession(endpoint, account.credentials) as session:
        in_scope = [f for f in scope.with_special_use(session.folders())
                    if not scope.wanted(f, spec)]
        for folder in sorted(in_scope, key=lambda f: (f.name.upper() != "INBOX", f.name)):
            info = session.examine(folder.name)
            uids = session.search(0, spec.since, spec.before) if info.exists else []
            names = _names_of(folder.name, marks)
            done = {p for n in names for p in archived[n]}
            broken = {p: r for n in names for p, r in failed[n].items()}
            balance = FolderBalance(account.address, folder.name, info.uidvalidity, len(uids))
            mark = marks.get(folder.name)
            for uid in uids:
                place = (info.uidvalidity, uid)
                if place in done:
                    balance.archived += 1
                elif place in broken:
                    balance.failed.append((uid, broken[place]))
                else:
                    balance.missing.append((uid, _why_missing(mark, info.uidvalidity, uid)))
            balances.append(balance)
    return balances


def _departed(vault: Vault, spec: SourceSpec, account: str) -> list[tuple[str, str, str]]:
    with vault.engine.connect() as conn:
        marks = state.folder_marks(conn, spec.name, account)
    return [(account, m.folder, f"renamed to {m.note}" if m.status == state.RENAMED
             else m.note) for m in marks.values() if m.status != state.ACTIVE]


def _names_of(folder: str, marks: dict[str, FolderMark]) -> set[str]:
    """The folder's name and every earlier name it was renamed from."""
    names = {folder}
    changed = True
    while changed:
        earlier = {m.folder for m in marks.values()
                   if m.status == state.RENAMED and m.note in names}
        changed = not earlier <= names
        names |= earlier
    return names


def _why_missing(mark: FolderMark | None, uidvalidity: int, uid: int) -> str:
    if mark is None or mark.status != state.ACTIVE:
        return "the folder has not been synced yet"
    if mark.uidvalidity != uidvalidity:
        return (f"the folder's UIDVALIDITY changed ({mark.uidvalidity} -> {uidvalidity}) "
                "since the last sync")
    if uid > mark.highest_uid:
        return f"it arrived after the last sync (UID above {mark.highest_uid})"
    return "the sync passed it without archiving it (outside the date range when synced?)"


def _pop3(vault: Vault, spec: SourceSpec, endpoint: Endpoint, account: Account) -> FolderBalance:
    archived, failed = _recorded(vault, spec, account.address)
    listing = list_maildrop(vault, spec, endpoint, account.credentials)
    balance = FolderBalance(account.address, POP3_FOLDER, None, len(listing))
    for listed in listing:
        place: Place = ("", listed.uidl)
        if place in archived[POP3_FOLDER]:
            balance.archived += 1
        elif place in failed[POP3_FOLDER]:
            balance.failed.append((listed.uidl, failed[POP3_FOLDER][place]))
        else:
            balance.missing.append((listed.uidl, "it arrived after the last sync"))
    return balance


def _recorded(vault: Vault, spec: SourceSpec, account: str
              ) -> tuple[dict[str, set[Place]], dict[str, dict[Place, str]]]:
    """Places archived and places that failed (unresolved), by folder, for one account."""
    archived: dict[str, set[Place]] = defaultdict(set)
    failed: dict[str, dict[Place, str]] = defaultdict(dict)
    prov, fail = schema.provenance, schema.failures
    with vault.engine.connect() as conn:
        for data in conn.execute(select(prov.c.data).where(
                prov.c.kind == spec.kind, prov.c.source == spec.name,
                prov.c.account == account)).scalars():
            # The catalog keeps only the fields that are set (Provenance.to_stored_json).
            record = Provenance.from_json(json.loads(data)).to_json()
            archived[record["folder"]].add(_place(record))
        for row in conn.execute(select(fail.c.provenance, fail.c.reason).where(
                fail.c.kind == spec.kind, fail.c.source == spec.name,
                fail.c.resolved.is_(False))):
            record = json.loads(row.provenance)
            if record.get("account") == account:
                failed[record["folder"]][_place(record)] = row.reason
    return archived, failed


def _place(record: dict[str, Any]) -> Place:
    if record.get("uid") is not None:
        return (int(record["uidvalidity"]), int(record["uid"]))
    return ("", str(record["item"]))
