"""Disposition: the only way a message leaves the vault (Permission.RETENTION).

Every step is audited by the capability (``dispose-dry-run``, ``dispose-propose``,
``dispose``, ``dispose-cancel``, ``dispose-done``), and the four-eyes rule stays enforced
there: a run proposed under it needs an approver other than its proposer, compared by the
principal's name (the audit log's actor).
"""

from __future__ import annotations

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.compliance import disposition
from mailvault.compliance.disposition import Plan as Plan  # re-exported for the faces
from mailvault.compliance.disposition import Run as Run  # re-exported for the faces
from mailvault.vault import Vault

PROPOSED = disposition.PROPOSED
EXECUTED = disposition.EXECUTED


def dry_run(vault: Vault, who: Principal) -> Plan:
    """What a disposition would delete now, and what holds keep (audited as looked at;
    nothing else is written)."""
    require(who, Permission.RETENTION)
    return disposition.dry_run(vault, who.name)


def propose(vault: Vault, who: Principal) -> Run:
    """Freeze the current candidates into a run awaiting another administrator's approval."""
    require(who, Permission.RETENTION)
    return disposition.propose(vault, who.name)


def approve(vault: Vault, who: Principal, run_id: int) -> Run:
    """Approve and execute a proposed run (re-planned first: a hold placed meanwhile wins)."""
    require(who, Permission.RETENTION)
    return disposition.approve(vault, run_id, who.name)


def cancel(vault: Vault, who: Principal, run_id: int) -> Run:
    """Withdraw a proposed run."""
    require(who, Permission.RETENTION)
    return disposition.cancel(vault, run_id, who.name)


def dispose(vault: Vault, who: Principal) -> Run:
    """Propose and execute at once (only while the four-eyes rule is off)."""
    require(who, Permission.RETENTION)
    return disposition.dispose(vault, who.name)


def runs(vault: Vault, who: Principal) -> list[Run]:
    """The newest disposition runs first."""
    require(who, Permission.RETENTION)
    return disposition.runs(vault)
