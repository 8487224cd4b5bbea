"""Running a search for a person: parse, query the index, read the rows, audit the search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailvault.compliance import audit
from mailvault.search.query import parse
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
    node = parse(text)
    total, ids = vault.index.search(node, limit=limit, offset=offset)
    with vault.engine.begin() as conn:
        rows = catalog.messages_by_id(conn, ids)
        audit.record(conn, actor, "search", {"query": text, "matches": total,
                                             "shown": len(rows), "offset": offset})
    return SearchResult(total, rows)


def count(vault: Vault, text: str, actor: str) -> int:
    """How many messages match (audited like a search)."""
    total = vault.index.count(parse(text))
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "count", {"query": text, "matches": total})
    return total
