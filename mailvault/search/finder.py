"""Running a search for a person: parse, query the index, read the rows, audit the search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailvault.compliance import audit, holds
from mailvault.errors import QueryError
from mailvault.search.query import And, IdSet, Node, Not, Or, Term, parse
from mailvault.store import catalog
from mailvault.store.catalog import MessageRow

if TYPE_CHECKING:
    from mailvault.vault import Vault


@dataclass(frozen=True)
class SearchResult:
    """One page of results, newest first, and how many messages match in all."""

    total: int
    rows: list[MessageRow]


def find(vault: Vault, text: str, actor: str, limit: int = 50, offset: int = 0) -> SearchResult:
    """Search the vault and record that ``actor`` searched (every search is audited)."""
    node = resolve(vault, parse(text))
    total, ids = vault.index.search(node, limit=limit, offset=offset)
    with vault.engine.begin() as conn:
        rows = catalog.messages_by_id(conn, ids)
        audit.record(conn, actor, "search", {"query": text, "matches": total,
                                             "shown": len(rows), "offset": offset})
    return SearchResult(total, rows)


def count(vault: Vault, text: str, actor: str) -> int:
    """How many messages match (audited like a search)."""
    total = vault.index.count(resolve(vault, parse(text)))
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "count", {"query": text, "matches": total})
    return total


def resolve(vault: Vault, node: Node) -> Node:
    """Replace what only the catalog knows: ``hold:NAME`` becomes exactly the messages the
    active hold covers now, by the same rule disposition uses (so a search for a hold shows
    precisely what cannot be disposed of)."""
    if isinstance(node, Term) and node.field == "hold":
        by_name = {h.name.lower(): h for h in holds.holds(vault)}
        hold = by_name.get(node.text.lower())
        if hold is None:
            raise QueryError(f"there is no active legal hold named {node.text!r}.")
        return IdSet(frozenset(holds.held_by(vault, hold)))
    if isinstance(node, Not):
        return Not(resolve(vault, node.child))
    if isinstance(node, And):
        return And(tuple(resolve(vault, c) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(resolve(vault, c) for c in node.children))
    return node
