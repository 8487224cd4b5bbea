"""Queues and decisions. A reviewer named by a policy works its queue (level 1); a policy's
escalation reviewers work the items escalated to them (level 2). A reviewer reaches only the
messages of those items: that is the whole of what the reviewer role can see.

Decisions: ``no_issue``, ``escalate`` (level 1 only, to the policy's escalation reviewers),
``violation``; a note is required for escalate and violation. Whoever escalated an item
cannot decide it at level 2 (a second person looks). Each decision is a row of
``review_decisions`` and an audit entry (``review-decision``, or ``review-escalate``), in
the transaction that changes the item; a bulk decision is all or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from mailvault.errors import InputError, NotFoundError
from mailvault.review.policies import ReviewPolicy, listed
from mailvault.store import audit, catalog, schema
from mailvault.store.catalog import from_epoch, now
from mailvault.vault import Vault

DECISIONS = ("no_issue", "escalate", "violation")
OPEN_STATES = ("pending", "escalated")
MAX_NOTE = 4000
MAX_BULK = 1000


@dataclass(frozen=True)
class QueueItem:
    """One item of a queue, with what a reviewer sees of its message in a list."""

    id: int
    policy_id: int
    policy: str
    message_id: int
    period: str
    terms: tuple[str, ...]
    sampled: bool
    state: str
    level: int
    created_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    note: str
    subject: str
    sender: str
    date: datetime | None

    @property
    def reasons(self) -> list[str]:
        """Why the item is queued: each lexicon term that hit, and "sample"."""
        return [*self.terms, *(["sample"] if self.sampled else [])]

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "policy": self.policy, "policy_id": self.policy_id,
                "message": self.message_id, "period": self.period, "terms": list(self.terms),
                "sampled": self.sampled, "reasons": self.reasons, "state": self.state,
                "level": self.level, "created_at": iso(self.created_at),
                "decided_by": self.decided_by, "decided_at": iso(self.decided_at),
                "note": self.note, "subject": self.subject, "from": self.sender,
                "date": iso(self.date)}


@dataclass(frozen=True)
class Assignment:
    """The policies whose level-1 queue, and whose escalations, a reviewer works."""

    first: frozenset[int]
    second: frozenset[int]

    def reaches(self, policy_id: int, level: int) -> bool:
        return policy_id in self.first or (level == 2 and policy_id in self.second)


def assignment(vault: Vault, reviewer: str) -> Assignment:
    """What ``reviewer`` is assigned, from every policy (removed ones too: their queues stay
    to be worked)."""
    policies = listed(vault, include_removed=True)
    return Assignment(frozenset(p.id for p in policies if reviewer in p.reviewers),
                      frozenset(p.id for p in policies if reviewer in p.escalation_reviewers))


def _reachable_clause(given: Assignment) -> Any:
    items = schema.review_items
    return or_(items.c.policy_id.in_(sorted(given.first)),
               (items.c.policy_id.in_(sorted(given.second))) & (items.c.level == 2))


def queue_message_ids(vault: Vault, reviewer: str) -> frozenset[int]:
    """Every message in a queue ``reviewer`` works (open or decided)."""
    given = assignment(vault, reviewer)
    if not given.first and not given.second:
        return frozenset()
    items = schema.review_items
    with vault.engine.connect() as conn:
        return frozenset(conn.execute(select(items.c.message_id).distinct()
                                      .where(_reachable_clause(given))).scalars())


def in_queue(vault: Vault, reviewer: str, message_id: int) -> bool:
    """Whether a message is in a queue ``reviewer`` works."""
    given = assignment(vault, reviewer)
    if not given.first and not given.second:
        return False
    items = schema.review_items
    with vault.engine.connect() as conn:
        return conn.execute(select(items.c.id).where(
            items.c.message_id == message_id, _reachable_clause(given)).limit(1)).first() \
            is not None


def queue(vault: Vault, reviewer: str, *, include_decided: bool = False,
          policy: str | None = None, limit: int = 500, offset: int = 0) -> list[QueueItem]:
    """The items ``reviewer`` works: open ones (pending at level 1, escalated at level 2),
    oldest message first; decided ones too when asked for."""
    given = assignment(vault, reviewer)
    if not given.first and not given.second:
        return []
    items = schema.review_items
    query = select(items).where(_reachable_clause(given))
    if not include_decided:
        query = query.where(or_((items.c.state == "pending") & items.c.policy_id.in_(
            sorted(given.first)), (items.c.state == "escalated")
            & items.c.policy_id.in_(sorted(given.second))))
    names = {p.id: p.name for p in listed(vault, include_removed=True)}
    if policy is not None:
        wanted = [i for i, n in names.items() if n == policy or str(i) == policy]
        query = query.where(items.c.policy_id.in_(wanted))
    query = query.order_by(items.c.period, items.c.id).limit(limit).offset(offset)
    with vault.engine.connect() as conn:
        return _items(conn, list(conn.execute(query)), names)


def item(vault: Vault, reviewer: str, item_id: int) -> QueueItem:
    """One item ``reviewer`` works; NotFoundError for any other."""
    given = assignment(vault, reviewer)
    items = schema.review_items
    names = {p.id: p.name for p in listed(vault, include_removed=True)}
    with vault.engine.connect() as conn:
        row = conn.execute(select(items).where(items.c.id == item_id)).first()
        if row is None or not given.reaches(row.policy_id, row.level):
            raise NotFoundError(f"there is no review item {item_id} in your queues.")
        return _items(conn, [row], names)[0]


def items_of_message(vault: Vault, reviewer: str, message_id: int) -> list[QueueItem]:
    """The items of one message that ``reviewer`` works."""
    given = assignment(vault, reviewer)
    items = schema.review_items
    names = {p.id: p.name for p in listed(vault, include_removed=True)}
    with vault.engine.connect() as conn:
        rows = [r for r in conn.execute(select(items).where(items.c.message_id == message_id))
                if given.reaches(r.policy_id, r.level)]
        return _items(conn, rows, names)


def decide(vault: Vault, reviewer: str, item_ids: Sequence[int], decision: str,
           note: str) -> list[QueueItem]:
    """Record ``reviewer``'s decision on these items (all or none)."""
    if decision not in DECISIONS:
        raise InputError(f"a decision is {', '.join(DECISIONS)}, not {decision!r}.")
    note = note.strip()
    if decision != "no_issue" and not note:
        raise InputError(f"a decision of {decision.replace('_', ' ')} needs a note saying why.")
    if len(note) > MAX_NOTE:
        raise InputError(f"a note may have at most {MAX_NOTE} characters.")
    wanted = list(dict.fromkeys(item_ids))
    if not wanted:
        raise InputError("choose at least one item to decide.")
    if len(wanted) > MAX_BULK:
        raise InputError(f"at most {MAX_BULK} items can be decided at once.")
    given = assignment(vault, reviewer)
    policies = {p.id: p for p in listed(vault, include_removed=True)}
    items = schema.review_items
    at = now()
    with vault.engine.begin() as conn:
        rows = {r.id: r for r in conn.execute(select(items).where(items.c.id.in_(wanted)))}
        for item_id in wanted:
            row = rows.get(item_id)
            if row is None or not given.reaches(row.policy_id, row.level):
                raise NotFoundError(f"there is no review item {item_id} in your queues.")
            _check_decidable(conn, row, reviewer, decision, given, policies[row.policy_id])
        for item_id in wanted:
            row = rows[item_id]
            if decision == "escalate":
                values: dict[str, Any] = {"state": "escalated", "level": 2}
            else:
                values = {"state": decision, "decided_by": reviewer, "decided_at": at,
                          "note": note}
            conn.execute(update(items).where(items.c.id == item_id).values(**values))
            conn.execute(insert(schema.review_decisions).values(
                item_id=item_id, level=row.level, decision=decision, note=note,
                reviewer=reviewer, at=at))
            action = "review-escalate" if decision == "escalate" else "review-decision"
            audit.record(conn, reviewer, action, {
                "item": item_id, "policy": row.policy_id, "message": row.message_id,
                "level": row.level, "decision": decision, "note": note,
                "bulk": len(wanted) > 1})
    names = {i: p.name for i, p in policies.items()}
    with vault.engine.connect() as conn:
        fresh = list(conn.execute(select(items).where(items.c.id.in_(wanted))))
        by_id = {r.id: r for r in fresh}
        return _items(conn, [by_id[i] for i in wanted], names)


def _check_decidable(conn: Connection, row: Any, reviewer: str, decision: str,
                     given: Assignment, policy: ReviewPolicy) -> None:
    if row.state == "pending" and row.policy_id in given.first:
        if decision == "escalate" and not policy.escalation_reviewers:
            raise InputError(f"the policy {policy.name!r} names no escalation reviewer, so "
                             f"item {row.id} cannot be escalated.")
        return
    if row.state == "escalated" and row.policy_id in given.second:
        if decision == "escalate":
            raise InputError(f"item {row.id} is escalated already: decide no issue or "
                             "violation.")
        escalated_by = conn.execute(
            select(schema.review_decisions.c.reviewer)
            .where(schema.review_decisions.c.item_id == row.id,
                   schema.review_decisions.c.decision == "escalate")
            .order_by(schema.review_decisions.c.id.desc()).limit(1)).scalar()
        if escalated_by == reviewer:
            raise InputError(f"you escalated item {row.id}: another reviewer decides it.")
        return
    raise InputError(f"item {row.id} is {row.state.replace('_', ' ')}: it is not waiting "
                     "for your decision.")


def _items(conn: Connection, rows: list[Any], names: dict[int, str]) -> list[QueueItem]:
    messages = {m.id: m for m in catalog.messages_by_id(conn, [r.message_id for r in rows])}
    found = []
    for r in rows:
        message = messages.get(r.message_id)
        found.append(QueueItem(
            id=r.id, policy_id=r.policy_id, policy=names.get(r.policy_id, str(r.policy_id)),
            message_id=r.message_id, period=r.period, terms=tuple(json.loads(r.terms)),
            sampled=bool(r.sampled), state=r.state, level=r.level,
            created_at=from_epoch(r.created_at), decided_by=r.decided_by,
            decided_at=from_epoch(r.decided_at), note=r.note,
            subject=message.subject if message else "(disposed of)",
            sender=message.from_addr if message else "", date=message.date if message else None))
    return found
