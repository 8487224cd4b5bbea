"""The audit log: reading it, checking its chain, and its head.

Reading the entries needs Permission.AUDIT_READ (the auditor's), and is itself audited
(``audit read``): the log shows what others searched for and opened.

Checking the chain and printing its head need AUDIT_READ or MONITOR: they show whether the
log is intact, how many entries it has and the newest one's hash, never what an entry says,
and the administrator's monitoring page shows the head and the last verification beside the
other health figures. Neither is audited: an entry written by them would move the very head
they report (and checking must work on a full disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailvault.accounts.principal import Principal, require, require_any
from mailvault.accounts.roles import Permission
from mailvault.compliance.integrity import archive_problems
from mailvault.store import audit
from mailvault.store.audit import AuditEntry
from mailvault.store.audit_head import Head, parse_head
from mailvault.vault import Vault


@dataclass(frozen=True)
class ChainCheck:
    """What checking the log found: every problem (none: intact), and its head."""

    problems: list[str]
    head: Head

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """``audit verify --json``."""
        return {"ok": self.ok, "entries": self.head.seq, "head": self.head.hash,
                "problems": self.problems}


def given_head(text: str) -> Head:
    """A head written as SEQ:HASH (as 'mailvault audit head' prints it, or 'SEQ HASH'),
    checked; InputError when it is not one."""
    return parse_head(text)


def read_log(vault: Vault, who: Principal, since: datetime | None = None
             ) -> list[AuditEntry]:
    """The entries from ``since`` on, oldest first; the reading is recorded after them."""
    require(who, Permission.AUDIT_READ)
    with vault.engine.begin() as conn:
        entries = list(audit.entries(conn, since))
        audit.record(conn, who.name, "audit read", {
            "since": since.isoformat() if since else None, "entries": len(entries)})
    return entries


def verify_chain(vault: Vault, who: Principal, given: Head | None = None) -> ChainCheck:
    """Check that no entry was edited, inserted or removed (none cut off the end either,
    nor before ``given``, a head kept outside the archive), and that every message the log
    says was archived is still there or was disposed of."""
    require_any(who, Permission.AUDIT_READ, Permission.MONITOR)
    with vault.engine.connect() as conn:
        problems = audit.verify(conn, given) + archive_problems(conn)
        seq, digest = audit.head(conn)
    return ChainCheck(problems, Head(seq, digest))


def head(vault: Vault, who: Principal) -> Head:
    """The newest entry's number and hash."""
    require_any(who, Permission.AUDIT_READ, Permission.MONITOR)
    with vault.engine.connect() as conn:
        seq, digest = audit.head(conn)
    return Head(seq, digest)
