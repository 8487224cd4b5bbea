"""Data subject requests (GDPR): what the archive holds about a person, and erasure.

``person_report`` is an auditor's (SEARCH_ALL: it lists every message an address is party
to, whoever's mailbox it sits in), audited as ``person-report``; the holds on each message
are named only to those who manage holds. ``erase`` is an administrator's (RETENTION: it
disposes): the request is recorded (``erasure-request``) first, then the person's messages
without a retention obligation or hold go through disposition (its own audit entries, the
run's ``purpose`` naming the request; under the four-eyes rule the run waits for another
administrator's ``dispose --approve``). What stays is in the outcome, each with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailvault.accounts.principal import Principal, allows, require
from mailvault.accounts.roles import Permission
from mailvault.compliance import disposition, subjects
from mailvault.compliance.disposition import Run
from mailvault.compliance.subjects import SubjectMessage, SubjectReport
from mailvault.errors import InputError
from mailvault.store import audit
from mailvault.vault import Vault


@dataclass(frozen=True)
class Erasure:
    """An erasure request's outcome: the disposition run (executed, or proposed and waiting
    for approval; None when nothing was erasable) and every message that stays, with why."""

    address: str
    reason: str
    run: Run | None
    kept: list[SubjectMessage]
    show_holds: bool

    @property
    def disposed(self) -> int:
        return self.run.disposed if self.run and self.run.state == disposition.EXECUTED else 0

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "reason": self.reason, "disposed": self.disposed,
                "run": self.run.to_json() if self.run else None,
                "kept": [m.to_json(self.show_holds) for m in self.kept]}


def person_report(vault: Vault, who: Principal, address: str) -> SubjectReport:
    """Every message ``address`` is party to, by tier, with retention and holds."""
    require(who, Permission.SEARCH_ALL)
    found = subjects.report(vault, address)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "person-report", {
            "address": found.address, "messages": len(found.messages)})
    return found


def shows_holds(principal: Principal) -> bool:
    """Whether reports name the holds on a message for ``principal``."""
    return allows(principal, Permission.HOLDS)


def erase(vault: Vault, who: Principal, address: str, reason: str) -> Erasure:
    """Record an erasure request for ``address`` and dispose of its messages that have no
    retention obligation (retain-until in the future) and no legal hold."""
    require(who, Permission.RETENTION)
    if not reason.strip():
        raise InputError("an erasure request needs a reason (--reason), kept in the audit log.")
    found = subjects.report(vault, address)
    subjects.record_request(vault, who.name, found, reason.strip())
    erasable = [m.row.id for m in found.erasable]
    purpose = f"erasure request for {found.address}"
    run = None
    if erasable:
        if vault.settings.retention.four_eyes:
            run = disposition.propose(vault, who.name, erasable, purpose)
        else:
            run = disposition.dispose(vault, who.name, erasable, purpose)
    kept = [m for m in found.messages if not m.erasable]
    return Erasure(found.address, reason.strip(), run, kept, shows_holds(who))
