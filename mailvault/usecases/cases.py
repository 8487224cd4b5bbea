"""Cases (eDiscovery): create, list, show and close them; add custodians, saved queries,
notes; place legal holds from them. The auditor's work: every call needs SEARCH_ALL (a case
gathers mail of anyone), holds need HOLDS as well (through ``usecases.holds``).

Every change is audited with the case's reference (its chain of custody); showing a case is
audited too (``case-view``), since it counts each custodian's and query's mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailvault.accounts.principal import Principal, allows, require
from mailvault.accounts.roles import Permission
from mailvault.discovery import cases, jobs
from mailvault.discovery.cases import Case, CaseItem
from mailvault.discovery.jobs import ExportJob
from mailvault.errors import InputError
from mailvault.search.query import parse as parse_query
from mailvault.search.query import party
from mailvault.store.audit import AuditEntry
from mailvault.usecases import finding, holds
from mailvault.usecases.holds import HeldCount
from mailvault.vault import Vault


@dataclass(frozen=True)
class CaseView:
    """A case with what it holds: custodians and queries with their message counts, its
    holds (with how many messages each covers now), notes, exports, chain of custody."""

    case: Case
    custodians: list[tuple[CaseItem, int]]
    queries: list[tuple[CaseItem, int]]
    holds: list[HeldCount]
    notes: list[CaseItem]
    exports: list[ExportJob]
    custody: list[AuditEntry]

    def to_json(self) -> dict[str, Any]:
        return {**self.case.to_json(),
                "custodians": [{**i.to_json(), "messages": n} for i, n in self.custodians],
                "queries": [{**i.to_json(), "messages": n} for i, n in self.queries],
                "holds": [h.to_json() for h in self.holds],
                "notes": [n.to_json() for n in self.notes],
                "exports": [e.to_json() for e in self.exports],
                "custody": [e.to_json() for e in self.custody]}


def create_case(vault: Vault, who: Principal, name: str, description: str = "") -> Case:
    """Open a new case (audited ``case-create``)."""
    require(who, Permission.SEARCH_ALL)
    return cases.create(vault, name, description, who.name)


def list_cases(vault: Vault, who: Principal, include_closed: bool = True) -> list[Case]:
    """Every case (not audited: names and states, no mail)."""
    require(who, Permission.SEARCH_ALL)
    return cases.all_cases(vault, include_closed)


def show_case(vault: Vault, who: Principal, name: str) -> CaseView:
    """A case and everything it holds (audited ``case-view`` with the counts shown)."""
    require(who, Permission.SEARCH_ALL)
    case = cases.named(vault, name)
    items = cases.items(vault, case)
    custodians = [(i, vault.index.count(party(i.value)))
                  for i in items if i.kind == "custodian"]
    queries = [(i, vault.index.count(finding.scoped_query(vault, who, i.value)))
               for i in items if i.kind == "query"]
    hold_names = {i.value for i in items if i.kind == "hold"}
    held = ([h for h in holds.list_holds(vault, who, include_released=True)
             if h.hold.name in hold_names] if allows(who, Permission.HOLDS) else [])
    custody = cases.custody(vault, case) if allows(who, Permission.AUDIT_READ) else []
    cases.record(vault, case, who.name, "case-view", {
        "name": case.name, "custodians": {i.value: n for i, n in custodians},
        "queries": {i.name: n for i, n in queries}})
    return CaseView(case, custodians, queries, held,
                    [i for i in items if i.kind == "note"], jobs.listed(vault, case.id),
                    custody)


def close_case(vault: Vault, who: Principal, name: str, note: str = "") -> Case:
    """Close a case (audited); its holds stay until each is released on its own."""
    require(who, Permission.SEARCH_ALL)
    return cases.close(vault, cases.named(vault, name), who.name, note)


def add_custodian(vault: Vault, who: Principal, name: str, address: str) -> CaseItem:
    """Name a custodian (an address) of the case (audited ``case-custodian``)."""
    require(who, Permission.SEARCH_ALL)
    address = address.strip().lower()
    if "@" not in address or any(c.isspace() for c in address):
        raise InputError(f"{address!r} is not a mail address.")
    return cases.add_item(vault, cases.named(vault, name), "custodian", "", address, who.name)


def add_query(vault: Vault, who: Principal, name: str, label: str, query: str) -> CaseItem:
    """Save a query under a label in the case (audited ``case-query``; it must parse)."""
    require(who, Permission.SEARCH_ALL)
    parse_query(query)
    label = " ".join(label.split())
    if not label:
        raise InputError("a case's query needs a label.")
    return cases.add_item(vault, cases.named(vault, name), "query", label, query, who.name)


def add_note(vault: Vault, who: Principal, name: str, text: str) -> CaseItem:
    """Add a note to the case (audited ``case-note``)."""
    require(who, Permission.SEARCH_ALL)
    return cases.add_item(vault, cases.named(vault, name), "note", "", text, who.name)


def place_hold(vault: Vault, who: Principal, name: str, hold: str, *, reason: str,
               owner: str, custodian: str | None = None, query: str | None = None
               ) -> HeldCount:
    """Place a legal hold from the case: the hold (``usecases.holds``) is linked to the case
    and its ``hold-place`` entry joins the case's chain of custody."""
    require(who, Permission.SEARCH_ALL)
    require(who, Permission.HOLDS)
    case = cases.named(vault, name)
    if not case.is_open:
        raise InputError(f"the case {case.name!r} is closed.")
    placed = holds.place_hold(vault, who, hold, reason=reason, owner=owner,
                              custodian=custodian, query=query, case=case.id)
    cases.add_item(vault, case, "hold", "", placed.hold.name, who.name)
    return placed
