"""Retention policies and each message's retain-until date (Permission.RETENTION, the
administrator's).

Adding, changing and removing a policy are audited by the capability (``retention-add``,
``retention-default``, ``retention-remove``). Recomputing and looking are not: they change
nothing a policy does not already say. A message's retention shows the holds on it only to
those who manage holds; an administrator without the auditor role sees that it is kept, and
until when, not by which matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailvault.accounts.principal import Principal, allows, require
from mailvault.accounts.roles import Permission
from mailvault.compliance import holds, object_lock, retention
from mailvault.compliance.retention import Policy as Policy  # re-exported for the faces
from mailvault.store import catalog
from mailvault.store.catalog import from_epoch
from mailvault.vault import Vault


@dataclass(frozen=True)
class MessageRetention:
    """How long one message is kept, by which policy, and (for those who may see holds)
    the holds that keep it whatever its date."""

    id: int
    sha256: str
    retain_until: datetime | None
    policy: str
    holds: list[str] | None

    def to_json(self) -> dict[str, Any]:
        """``retention show --json``."""
        data: dict[str, Any] = {
            "id": self.id, "sha256": self.sha256,
            "retain_until": self.retain_until.isoformat() if self.retain_until else None,
            "policy": self.policy}
        if self.holds is not None:
            data["holds"] = self.holds
        return data


def list_policies(vault: Vault, who: Principal) -> list[Policy]:
    """Every policy, the default first (the longest applicable period wins)."""
    require(who, Permission.RETENTION)
    return retention.policies(vault)


def add_policy(vault: Vault, who: Principal, name: str, *, match: str, value: str,
               period: str, counted_from: str = "date") -> Policy:
    """Add a policy (matching source, address, domain, folder, tier or query; a period
    like 90d, 6m or 7y) and recompute every message's retain-until date."""
    require(who, Permission.RETENTION)
    policy = retention.add_policy(vault, name, match, value, period, counted_from, who.name)
    object_lock.refresh(vault)
    return policy


def set_default_policy(vault: Vault, who: Principal, period: str,
                       counted_from: str = "date") -> Policy:
    """Change the default policy (it always applies) and recompute."""
    require(who, Permission.RETENTION)
    policy = retention.set_default(vault, period, counted_from, who.name)
    object_lock.refresh(vault)
    return policy


def remove_policy(vault: Vault, who: Principal, name: str) -> None:
    """Remove a policy (never the default) and recompute."""
    require(who, Permission.RETENTION)
    retention.remove_policy(vault, name, who.name)


def recompute(vault: Vault, who: Principal) -> int:
    """Recompute every message's retain-until date; returns how many changed."""
    require(who, Permission.RETENTION)
    changed = retention.recompute(vault)
    object_lock.refresh(vault)
    return changed


def message_retention(vault: Vault, who: Principal, ref: str) -> MessageRetention:
    """A message's (id or SHA-256 prefix) retain-until date, recomputed now, the policy that
    decides it, and the holds on it."""
    require(who, Permission.RETENTION)
    with vault.engine.connect() as conn:
        row = catalog.resolve(conn, ref)
    retention.recompute(vault, [row.id])
    with vault.engine.connect() as conn:
        until, policy = retention.retain_until(conn, [row.id])[row.id]
    on_hold = None
    if allows(who, Permission.HOLDS):
        on_hold = [h.name for h in holds.holds(vault) if row.id in holds.held_by(vault, h)]
    return MessageRetention(row.id, row.sha256, from_epoch(until), policy, on_hold)
