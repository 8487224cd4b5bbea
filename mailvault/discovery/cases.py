"""Cases: a matter's custodians, saved queries, linked legal holds, notes and exports.

A case is a name under which investigators gather what they found. Every change to it is
an audit entry tagged with the case (``audit.record(..., case=)``), so the case's chain of
custody is read back from the one audit log. Closing a case stops changes to it; it does
not release its holds (a release is always its own, explicit act).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError as DuplicateRow

from mailvault.errors import InputError, NotFoundError
from mailvault.store import audit, schema
from mailvault.store.audit import AuditEntry
from mailvault.store.catalog import from_epoch, now
from mailvault.vault import Vault

ITEM_KINDS = ("custodian", "query", "hold", "note")
MAX_NAME = 100
MAX_TEXT = 10_000


@dataclass(frozen=True)
class Case:
    """One case."""

    id: int
    name: str
    description: str
    state: str
    created_by: str
    created_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description,
                "state": self.state, "created_by": self.created_by,
                "created_at": _iso(self.created_at), "closed_by": self.closed_by,
                "closed_at": _iso(self.closed_at)}


@dataclass(frozen=True)
class CaseItem:
    """A custodian (address), saved query (name and query), linked hold (its name) or note."""

    id: int
    kind: str
    name: str
    value: str
    created_by: str
    created_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "value": self.value,
                "created_by": self.created_by, "created_at": _iso(self.created_at)}


def create(vault: Vault, name: str, description: str, actor: str) -> Case:
    """Open a new case (audited ``case-create``)."""
    _utf8(name, description)
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InputError(f"a case needs a name of 1 to {MAX_NAME} printable characters.")
    if len(description) > MAX_TEXT:
        raise InputError(f"a case description may have at most {MAX_TEXT} characters.")
    try:
        with vault.engine.begin() as conn:
            result = conn.execute(insert(schema.cases).values(
                name=name, description=description, state="open", created_by=actor,
                created_at=now()))
            assert result.inserted_primary_key is not None
            case_id = int(result.inserted_primary_key[0])
            audit.record(conn, actor, "case-create",
                         {"name": name, "description": description}, case=case_id)
            return _case(_row(conn, name))
    except DuplicateRow:
        raise InputError(f"a case named {name!r} exists already.") from None


def named(vault: Vault, name: str) -> Case:
    """The case of that name; NotFoundError when there is none."""
    try:
        _utf8(name)
    except InputError:
        raise NotFoundError("there is no case by that name.") from None
    with vault.engine.connect() as conn:
        row = _row(conn, " ".join(name.split()))
    if row is None:
        raise NotFoundError(f"there is no case named {name!r}.")
    return _case(row)


def by_id(vault: Vault, case_id: int) -> Case:
    """The case with that id; NotFoundError when there is none."""
    with vault.engine.connect() as conn:
        row = conn.execute(select(schema.cases).where(schema.cases.c.id == case_id)).first()
    if row is None:
        raise NotFoundError(f"there is no case {case_id}.")
    return _case(row)


def all_cases(vault: Vault, include_closed: bool = True) -> list[Case]:
    """Every case, oldest first (open ones only unless asked)."""
    query = select(schema.cases).order_by(schema.cases.c.id)
    if not include_closed:
        query = query.where(schema.cases.c.state == "open")
    with vault.engine.connect() as conn:
        return [_case(r) for r in conn.execute(query)]


def close(vault: Vault, case: Case, actor: str, note: str = "") -> Case:
    """Close a case (audited ``case-close``); its holds stay in force."""
    _open(case)
    with vault.engine.begin() as conn:
        conn.execute(update(schema.cases).where(schema.cases.c.id == case.id)
                     .values(state="closed", closed_by=actor, closed_at=now()))
        audit.record(conn, actor, "case-close", {"name": case.name, "note": note},
                     case=case.id)
        return _case(_row(conn, case.name))


def add_item(vault: Vault, case: Case, kind: str, name: str, value: str,
             actor: str) -> CaseItem:
    """Add a custodian, query, hold link or note to an open case (audited ``case-KIND``)."""
    _utf8(name, value)
    if kind not in ITEM_KINDS:
        raise InputError(f"a case holds {', '.join(ITEM_KINDS)}, not {kind!r}.")
    _open(case)
    if not value.strip() or len(value) > MAX_TEXT or len(name) > MAX_NAME:
        raise InputError(f"a case's {kind} needs a value of 1 to {MAX_TEXT} characters.")
    if kind in ("custodian", "query", "hold") and any(
            i.name == name and i.value == value for i in items(vault, case, kind)):
        raise InputError(f"the case {case.name!r} has that {kind} already.")
    at = now()
    with vault.engine.begin() as conn:
        result = conn.execute(insert(schema.case_items).values(
            case_id=case.id, kind=kind, name=name, value=value, created_by=actor,
            created_at=at))
        assert result.inserted_primary_key is not None
        audit.record(conn, actor, f"case-{kind}", {"name": name, "value": value},
                     case=case.id)
    return CaseItem(int(result.inserted_primary_key[0]), kind, name, value, actor,
                    from_epoch(at))


def items(vault: Vault, case: Case, kind: str | None = None) -> list[CaseItem]:
    """What a case holds, oldest first (one kind, if given)."""
    table = schema.case_items
    query = select(table).where(table.c.case_id == case.id).order_by(table.c.id)
    if kind is not None:
        query = query.where(table.c.kind == kind)
    with vault.engine.connect() as conn:
        return [CaseItem(r.id, r.kind, r.name, r.value, r.created_by,
                         from_epoch(r.created_at)) for r in conn.execute(query)]


def record(vault: Vault, case: Case, actor: str, action: str,
           detail: dict[str, Any]) -> None:
    """Write an audit entry that belongs to the case's chain of custody."""
    with vault.engine.begin() as conn:
        audit.record(conn, actor, action, detail, case=case.id)


def custody(vault: Vault, case: Case) -> list[AuditEntry]:
    """The case's chain of custody, oldest first: every entry tagged with it, and the
    release of any of its holds (a release is made as a hold's own act, outside the case)."""
    holds = {i.value for i in items(vault, case, "hold")}
    with vault.engine.connect() as conn:
        found = {e.seq: e for e in audit.of_case(conn, case.id)}
        if holds:
            found.update((e.seq, e) for e in audit.newest_first(conn, "hold-release")
                         if e.detail.get("name") in holds)
    return [found[seq] for seq in sorted(found)]


def _utf8(*texts: str) -> None:
    """Refuse text that is not valid Unicode (a lone surrogate from a JSON escape)."""
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("a case's names and texts must be valid Unicode.") from None


def _open(case: Case) -> None:
    if not case.is_open:
        raise InputError(f"the case {case.name!r} is closed.")


def _row(conn: Connection, name: str) -> Any:
    return conn.execute(select(schema.cases).where(schema.cases.c.name == name)).first()


def _case(row: Any) -> Case:
    return Case(id=row.id, name=row.name, description=row.description, state=row.state,
                created_by=row.created_by, created_at=from_epoch(row.created_at),
                closed_by=row.closed_by, closed_at=from_epoch(row.closed_at))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
