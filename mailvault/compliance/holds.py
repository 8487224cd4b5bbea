"""Legal holds: what must not be disposed of, whatever its retention says.

A hold names a custodian (an address: every message it sent, received or was Bcc'd or
journaled on) or a search query, optionally within a date range. It is evaluated when it is
needed, not frozen when it is made, so it covers messages archived after it too. It ends only
by an explicit release, which is audited like its creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, or_, select, update

from mailvault.errors import InputError, NotFoundError, QueryError
from mailvault.search.query import IdSet, Node, Term, parse, substitute
from mailvault.store import audit, schema
from mailvault.store.catalog import from_epoch, now

if TYPE_CHECKING:
    from mailvault.vault import Vault


@dataclass(frozen=True)
class Hold:
    """One legal hold."""

    id: int
    name: str
    custodian: str | None
    query: str | None
    date_from: datetime | None
    date_to: datetime | None
    reason: str
    owner: str
    created_by: str
    created_at: datetime | None
    released_by: str | None
    released_at: datetime | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "name": self.name, "custodian": self.custodian,
                "query": self.query, "date_from": iso(self.date_from),
                "date_to": iso(self.date_to), "reason": self.reason, "owner": self.owner,
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "released_by": self.released_by, "released_at": iso(self.released_at),
                "active": self.active}


def place(vault: Vault, name: str, *, custodian: str | None, query: str | None,
          date_from: datetime | None, date_to: datetime | None, reason: str, owner: str,
          actor: str, case: int | None = None) -> Hold:
    """Place a hold on a custodian's mail or a query's matches (dates: from inclusive, to
    exclusive); ``case`` names the case it is placed from (its audit entry joins that
    case's chain of custody)."""
    if not name.strip():
        raise InputError("a hold needs a name.")
    if bool(custodian) == bool(query):
        raise InputError("a hold names either a custodian address or a query (one of them).")
    if not reason.strip() or not owner.strip():
        raise InputError("a hold needs a reason and an owner.")
    if query:
        parse(query)
    with vault.engine.begin() as conn:
        if _row(conn, name) is not None:
            raise InputError(f"a hold named {name!r} exists already.")
        conn.execute(insert(schema.legal_holds).values(
            name=name, custodian=custodian.strip().lower() if custodian else None,
            query=query, date_from=_epoch(date_from), date_to=_epoch(date_to),
            reason=reason, owner=owner, created_by=actor, created_at=now()))
        audit.record(conn, actor, "hold-place", {
            "name": name, "custodian": custodian, "query": query, "reason": reason,
            "owner": owner, "from": _epoch(date_from), "to": _epoch(date_to)}, case=case)
        return _hold(_row(conn, name))


def release(vault: Vault, name: str, actor: str, note: str = "") -> Hold:
    """Release a hold (it stays listed, with who released it and when)."""
    with vault.engine.begin() as conn:
        row = _row(conn, name)
        if row is None:
            raise NotFoundError(f"there is no hold named {name!r}.")
        if row.released_at is not None:
            raise InputError(f"the hold {name!r} was released already.")
        conn.execute(update(schema.legal_holds).where(schema.legal_holds.c.id == row.id)
                     .values(released_by=actor, released_at=now()))
        audit.record(conn, actor, "hold-release", {"name": name, "note": note})
        return _hold(_row(conn, name))


def holds(vault: Vault, include_released: bool = False) -> list[Hold]:
    """Every hold (active ones only unless asked)."""
    query = select(schema.legal_holds).order_by(schema.legal_holds.c.id)
    if not include_released:
        query = query.where(schema.legal_holds.c.released_at.is_(None))
    with vault.engine.connect() as conn:
        return [_hold(r) for r in conn.execute(query)]


def held_by(vault: Vault, hold: Hold) -> set[int]:
    """The ids of every message a hold covers now."""
    m, a = schema.messages, schema.addresses
    dated = m.c.date
    with vault.engine.connect() as conn:
        if hold.custodian:
            ids = set(conn.execute(select(a.c.message_id)
                                   .where(a.c.address == hold.custodian)).scalars())
        else:
            assert hold.query is not None
            ids = set(vault.index.ids(parse(hold.query)))
        if hold.date_from is None and hold.date_to is None:
            return ids
        # A message without a Date is kept under any date range: doubt favours the hold.
        conditions = []
        if hold.date_from is not None:
            conditions.append(or_(dated.is_(None), dated >= _epoch(hold.date_from)))
        if hold.date_to is not None:
            conditions.append(or_(dated.is_(None), dated < _epoch(hold.date_to)))
        inside = set(conn.execute(select(m.c.id).where(*conditions)).scalars())
    return ids & inside


def held(vault: Vault) -> dict[int, list[str]]:
    """Every held message id -> the names of the active holds that cover it."""
    out: dict[int, list[str]] = {}
    for hold in holds(vault):
        for message_id in held_by(vault, hold):
            out.setdefault(message_id, []).append(hold.name)
    return out


def resolve_holds(vault: Vault, node: Node) -> Node:
    """The query with each ``hold:NAME`` replaced by exactly the messages the active hold
    covers now, by the rule disposition uses (so a search for a hold shows precisely what
    cannot be disposed of)."""
    by_name = {h.name.lower(): h for h in holds(vault)}

    def held(term: Term) -> Node:
        hold = by_name.get(term.text.lower())
        if hold is None:
            raise QueryError(f"there is no active legal hold named {term.text!r}.")
        return IdSet(frozenset(held_by(vault, hold)))

    return substitute(node, "hold", held)


def _row(conn: Connection, name: str) -> Any:
    return conn.execute(select(schema.legal_holds)
                        .where(schema.legal_holds.c.name == name)).first()


def _hold(row: Any) -> Hold:
    return Hold(id=row.id, name=row.name, custodian=row.custodian, query=row.query,
                date_from=from_epoch(row.date_from), date_to=from_epoch(row.date_to),
                reason=row.reason, owner=row.owner, created_by=row.created_by,
                created_at=from_epoch(row.created_at), released_by=row.released_by,
                released_at=from_epoch(row.released_at))


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
