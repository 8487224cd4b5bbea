"""Legal holds: placing, releasing and listing them (Permission.HOLDS, the auditor's).

Placing and releasing are audited by the capability (``hold-place``, ``hold-release``, with
the principal's name). Listing is not audited: it shows the holds (what the holders placed
themselves), not mail; nor is asking which holds keep one message (the message page shows it
to those who may see holds, and opening the message is audited already). With blobs in a
bucket, placing and releasing also set or lift the legal hold of the objects concerned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.compliance import holds as legal_holds
from mailvault.compliance import object_lock
from mailvault.compliance.holds import Hold
from mailvault.store import catalog
from mailvault.vault import Vault


@dataclass(frozen=True)
class HeldCount:
    """A hold and how many messages it covers now (0 for a released one)."""

    hold: Hold
    messages: int

    def to_json(self) -> dict[str, Any]:
        return {**self.hold.to_json(), "messages": self.messages}


def place_hold(vault: Vault, who: Principal, name: str, *, reason: str, owner: str,
               custodian: str | None = None, query: str | None = None,
               since: datetime | None = None, before: datetime | None = None,
               case: int | None = None) -> HeldCount:
    """Place a hold on a custodian's mail or a query's matches (dates: ``since`` inclusive,
    ``before`` exclusive); it covers matching mail archived later too. ``case``: the id of
    the case it is placed from (see ``usecases.cases.place_hold``)."""
    require(who, Permission.HOLDS)
    hold = legal_holds.place(vault, name, custodian=custodian, query=query, date_from=since,
                             date_to=before, reason=reason, owner=owner, actor=who.name,
                             case=case)
    object_lock.refresh(vault)
    return HeldCount(hold, len(legal_holds.held_by(vault, hold)))


def release_hold(vault: Vault, who: Principal, name: str, note: str = "") -> Hold:
    """Release a hold (explicitly: holds never expire); it stays listed as released."""
    require(who, Permission.HOLDS)
    released = legal_holds.release(vault, name, who.name, note)
    object_lock.refresh(vault)
    return released


def list_holds(vault: Vault, who: Principal, *, include_released: bool = False
               ) -> list[HeldCount]:
    """The holds (active ones unless asked), each with how many messages it covers now."""
    require(who, Permission.HOLDS)
    return [HeldCount(h, len(legal_holds.held_by(vault, h)) if h.active else 0)
            for h in legal_holds.holds(vault, include_released=include_released)]


def holds_on(vault: Vault, who: Principal, ref: str) -> list[Hold]:
    """The active holds that keep one message (id or SHA-256 prefix), as disposition sees
    them now."""
    require(who, Permission.HOLDS)
    with vault.engine.connect() as conn:
        row = catalog.resolve(conn, ref)
    return [h for h in legal_holds.holds(vault) if row.id in legal_holds.held_by(vault, h)]
