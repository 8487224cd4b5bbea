"""Retention policies and each message's retain-until date.

A policy matches messages by source, address, domain, folder, tier or a search query, and
keeps them for a period counted from the message's Date (or from when it was archived). Every
message carries the date of the longest applicable period (table ``retention``), recomputed
whenever policies change, after tier moves, and before every disposition. The default policy
always applies, so no message is ever without a retain-until date once computed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, or_, select, update

from mailvault.errors import InputError, NotFoundError
from mailvault.search.query import parse
from mailvault.store import audit, schema
from mailvault.store.catalog import from_epoch, now

if TYPE_CHECKING:
    from mailvault.vault import Vault

DEFAULT = "default"
MATCHES = ("default", "source", "address", "domain", "folder", "tier", "query")
COUNTED_FROM = ("date", "archived")
DAY = 86400
_PERIOD = re.compile(r"^\s*(\d+)\s*([dwmy]?)\s*$", re.I)
_UNIT_DAYS = {"": 1, "d": 1, "w": 7, "m": 30, "y": 365}


@dataclass(frozen=True)
class Policy:
    """One retention rule."""

    id: int
    name: str
    match: str
    value: str
    days: int
    counted_from: str
    created_by: str
    created_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "match": self.match, "value": self.value,
                "days": self.days, "counted_from": self.counted_from,
                "created_by": self.created_by,
                "created_at": self.created_at.isoformat() if self.created_at else None}


def parse_period(text: str) -> int:
    """Days in a period written as 90d, 12w, 6m, 7y or a number of days."""
    match = _PERIOD.match(text)
    if match is None:
        raise InputError(f"{text!r} is not a period (write it like 90d, 6m or 7y).")
    return int(match.group(1)) * _UNIT_DAYS[match.group(2).lower()]


def ensure_default(vault: Vault) -> None:
    """Create the default policy from the settings if the vault has none yet."""
    settings = vault.settings.retention
    with vault.engine.begin() as conn:
        if _policy_row(conn, DEFAULT) is None:
            _check_from(settings.default_from)
            conn.execute(insert(schema.retention_policies).values(
                name=DEFAULT, match="default", value="", days=settings.default_days,
                counted_from=settings.default_from, created_by="settings",
                created_at=now()))


def policies(vault: Vault) -> list[Policy]:
    """Every policy, the default first."""
    ensure_default(vault)
    with vault.engine.connect() as conn:
        rows = conn.execute(select(schema.retention_policies)
                            .order_by(schema.retention_policies.c.id)).all()
    return [_policy(r) for r in rows]


def add_policy(vault: Vault, name: str, match: str, value: str, period: str,
               counted_from: str, actor: str) -> Policy:
    """Add a policy, then recompute every message's retain-until date."""
    if not name.strip():
        raise InputError("a policy needs a name.")
    ensure_default(vault)
    match = match.strip().lower()
    if match not in MATCHES or match == "default":
        raise InputError(f"a policy matches one of: {', '.join(MATCHES[1:])} (not {match!r}).")
    if not value.strip():
        raise InputError(f"a {match} policy needs a value to match.")
    if match == "query":
        parse(value)
    _check_from(counted_from)
    days = parse_period(period)
    with vault.engine.begin() as conn:
        if _policy_row(conn, name) is not None:
            raise InputError(f"a policy named {name!r} exists already.")
        conn.execute(insert(schema.retention_policies).values(
            name=name, match=match, value=_normal(match, value), days=days,
            counted_from=counted_from, created_by=actor, created_at=now()))
        audit.record(conn, actor, "retention-add", {"name": name, "match": match,
                                                    "value": value, "days": days,
                                                    "from": counted_from})
    recompute(vault)
    return next(p for p in policies(vault) if p.name == name)


def set_default(vault: Vault, period: str, counted_from: str, actor: str) -> Policy:
    """Change the default policy's period, then recompute."""
    ensure_default(vault)
    _check_from(counted_from)
    days = parse_period(period)
    with vault.engine.begin() as conn:
        conn.execute(update(schema.retention_policies)
                     .where(schema.retention_policies.c.name == DEFAULT)
                     .values(days=days, counted_from=counted_from))
        audit.record(conn, actor, "retention-default", {"days": days, "from": counted_from})
    recompute(vault)
    return next(p for p in policies(vault) if p.name == DEFAULT)


def remove_policy(vault: Vault, name: str, actor: str) -> None:
    """Remove a policy (never the default), then recompute."""
    if name == DEFAULT:
        raise InputError("the default policy always applies; change its period instead.")
    with vault.engine.begin() as conn:
        row = _policy_row(conn, name)
        if row is None:
            raise NotFoundError(f"there is no retention policy named {name!r}.")
        conn.execute(schema.retention_policies.delete()
                     .where(schema.retention_policies.c.id == row.id))
        audit.record(conn, actor, "retention-remove", {"name": name, "match": row.match,
                                                       "value": row.value, "days": row.days})
    recompute(vault)


def compute(vault: Vault, ids: Sequence[int] | None = None) -> dict[int, tuple[int, int]]:
    """message id -> (retain_until, policy id) under the current policies, not stored."""
    rules = policies(vault)
    m = schema.messages
    wanted = set(ids) if ids is not None else None
    base: dict[int, tuple[int, int]] = {}
    with vault.engine.connect() as conn:
        for row in conn.execute(select(m.c.id, m.c.date, m.c.archived_at)):
            if wanted is None or row.id in wanted:
                base[row.id] = (row.date if row.date is not None else row.archived_at,
                                row.archived_at)
        matched = {p.id: _matching(vault, conn, p, base) for p in rules}
    out: dict[int, tuple[int, int]] = {}
    for policy in rules:
        for message_id in matched[policy.id]:
            dated, archived = base[message_id]
            start = dated if policy.counted_from == "date" else archived
            until = start + policy.days * DAY
            if message_id not in out or until > out[message_id][0]:
                out[message_id] = (until, policy.id)
    return out


def recompute(vault: Vault, ids: Sequence[int] | None = None) -> int:
    """Store every (or these) message's retain-until date; returns how many changed."""
    computed = compute(vault, ids)
    r = schema.retention
    changed = 0
    with vault.engine.begin() as conn:
        stored = {row.message_id: (row.retain_until, row.policy_id)
                  for row in conn.execute(select(r))
                  if row.message_id in computed or ids is None}
        for message_id, value in computed.items():
            if stored.get(message_id) == value:
                continue
            changed += 1
            if message_id in stored:
                conn.execute(update(r).where(r.c.message_id == message_id)
                             .values(retain_until=value[0], policy_id=value[1]))
            else:
                conn.execute(insert(r).values(message_id=message_id, retain_until=value[0],
                                              policy_id=value[1]))
        if ids is None:
            stale = [m for m in stored if m not in computed]
            for start in range(0, len(stale), 500):
                conn.execute(r.delete().where(r.c.message_id.in_(stale[start:start + 500])))
    return changed


def retain_until(conn: Connection, message_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """message id -> (stored retain-until, policy name)."""
    r, p = schema.retention, schema.retention_policies
    ids = list(message_ids)
    out: dict[int, tuple[int, str]] = {}
    for start in range(0, len(ids), 500):
        for row in conn.execute(select(r.c.message_id, r.c.retain_until, p.c.name)
                                .join(p, p.c.id == r.c.policy_id, isouter=True)
                                .where(r.c.message_id.in_(ids[start:start + 500]))):
            out[row.message_id] = (row.retain_until, row.name or "?")
    return out


def _matching(vault: Vault, conn: Connection, policy: Policy,
              base: dict[int, tuple[int, int]]) -> set[int]:
    m, a, pv = schema.messages, schema.addresses, schema.provenance
    value = policy.value
    if policy.match == "default":
        found: Iterable[int] = base
    elif policy.match == "tier":
        found = conn.execute(select(m.c.id).where(m.c.tier == value)).scalars()
    elif policy.match == "address":
        found = conn.execute(select(a.c.message_id).where(a.c.address == value)).scalars()
    elif policy.match == "domain":
        found = conn.execute(select(a.c.message_id)
                             .where(a.c.address.like("%@" + value))).scalars()
    elif policy.match == "folder":
        found = set(conn.execute(select(pv.c.message_id)
                                 .where(pv.c.folder == value)).scalars())
        found |= set(conn.execute(select(m.c.id).where(m.c.folder == value)).scalars())
    elif policy.match == "source":
        found = conn.execute(select(pv.c.message_id).where(or_(
            pv.c.source == value, pv.c.kind == value,
            (pv.c.kind + ":" + pv.c.source) == value))).scalars()
    else:
        found = vault.index.ids(parse(value))
    return {i for i in found if i in base}


def _normal(match: str, value: str) -> str:
    value = value.strip()
    if match in ("address", "domain", "tier"):
        value = value.lower().lstrip("@") if match == "domain" else value.lower()
    return value


def _check_from(counted_from: str) -> None:
    if counted_from not in COUNTED_FROM:
        raise InputError(f"a period counts from 'date' or 'archived', not {counted_from!r}.")


def _policy_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(schema.retention_policies)
                        .where(schema.retention_policies.c.name == name)).first()


def _policy(row: Any) -> Policy:
    return Policy(id=row.id, name=row.name, match=row.match, value=row.value, days=row.days,
                  counted_from=row.counted_from, created_by=row.created_by,
                  created_at=from_epoch(row.created_at))
