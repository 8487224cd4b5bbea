"""Saved searches: a person's own named queries. Each belongs to the principal who saved
it; nobody sees or deletes another's. Saving and deleting are audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError as DuplicateRow

from mailvault.accounts.principal import Principal, allows
from mailvault.accounts.roles import Permission
from mailvault.errors import InputError, NotFoundError, PermissionDenied
from mailvault.search.query import parse as parse_query
from mailvault.store import audit, catalog, schema
from mailvault.vault import Vault

MAX_NAME = 100
MAX_QUERY = 2000


@dataclass(frozen=True)
class SavedSearch:
    """One saved query."""

    id: int
    name: str
    query: str
    created_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "query": self.query,
                "created_at": self.created_at.isoformat() if self.created_at else None}


def save(vault: Vault, who: Principal, name: str, query: str) -> SavedSearch:
    """Save ``query`` under ``name`` for ``who`` (a query that cannot be parsed is refused)."""
    _may_search(who)
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise InputError(f"a saved search needs a name of 1 to {MAX_NAME} characters.")
    if len(query) > MAX_QUERY:
        raise InputError(f"a saved query may have at most {MAX_QUERY} characters.")
    parse_query(query)
    at = catalog.now()
    table = schema.saved_searches
    try:
        with vault.engine.begin() as conn:
            new_id = conn.execute(insert(table).values(
                owner=who.name, name=name, query=query, created_at=at)).inserted_primary_key
            assert new_id is not None
            audit.record(conn, who.name, "search-save", {"id": int(new_id[0]), "name": name,
                                                         "query": query})
    except DuplicateRow:
        raise InputError(f"you have a saved search named {name!r} already.") from None
    return SavedSearch(int(new_id[0]), name, query, catalog.from_epoch(at))


def saved(vault: Vault, who: Principal) -> list[SavedSearch]:
    """The searches ``who`` saved, by name."""
    table = schema.saved_searches
    with vault.engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.owner == who.name)
                            .order_by(table.c.name, table.c.id))
        return [SavedSearch(r.id, r.name, r.query, catalog.from_epoch(r.created_at))
                for r in rows]


def remove(vault: Vault, who: Principal, search_id: int) -> None:
    """Delete one of ``who``'s saved searches (another's is "not found")."""
    table = schema.saved_searches
    with vault.engine.begin() as conn:
        row = conn.execute(select(table).where(table.c.id == search_id,
                                               table.c.owner == who.name)).first()
        if row is None:
            raise NotFoundError(f"you have no saved search {search_id}.")
        conn.execute(delete(table).where(table.c.id == search_id))
        audit.record(conn, who.name, "search-delete", {"id": search_id, "name": row.name})


def _may_search(who: Principal) -> None:
    if not (allows(who, Permission.SEARCH_ALL) or allows(who, Permission.OWN_MAIL)):
        raise PermissionDenied(f"{who.name} may not search mail, so cannot save searches.")
