"""Review policies: who is supervised, which directions, the lexicon, the sample, the
exclusions and who reviews. A policy is added and removed, never edited (its seed and terms
are what its queues and reports were made from); removing it stops its runs and keeps its
queue and reports."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError as DuplicateRow

from mailvault.accounts.principal import normal_addresses
from mailvault.accounts.roles import Role
from mailvault.accounts.users import get_user
from mailvault.errors import InputError, NotFoundError, QueryError
from mailvault.search.query import Node, mentions
from mailvault.search.query import parse as parse_query
from mailvault.store import audit, schema
from mailvault.store.catalog import from_epoch, now
from mailvault.vault import Vault

DIRECTIONS = ("inbound", "outbound", "internal")
PERIODS = ("daily", "weekly")
MAX_NAME = 100
MAX_TERM = 500


@dataclass(frozen=True)
class ReviewPolicy:
    """One review policy as stored."""

    id: int
    name: str
    supervised: tuple[str, ...]            # addresses, lower case
    supervised_users: tuple[str, ...]      # user names; their addresses are read at each run
    directions: tuple[str, ...]            # of DIRECTIONS
    lexicon: tuple[str, ...]               # each a query in the search language
    sample_percent: float
    period: str                            # of PERIODS
    seed: int
    exclude_senders: tuple[str, ...] = ()  # addresses or @domains
    exclude_automated: bool = True
    reviewers: tuple[str, ...] = ()
    escalation_reviewers: tuple[str, ...] = ()
    created_by: str = ""
    created_at: datetime | None = None
    removed_at: datetime | None = None
    removed_by: str | None = None
    terms: dict[str, Node] = field(default_factory=dict, compare=False, repr=False)

    @property
    def active(self) -> bool:
        return self.removed_at is None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "supervised": list(self.supervised),
                "supervised_users": list(self.supervised_users),
                "directions": list(self.directions), "lexicon": list(self.lexicon),
                "sample_percent": self.sample_percent, "period": self.period,
                "seed": self.seed, "exclude_senders": list(self.exclude_senders),
                "exclude_automated": self.exclude_automated,
                "reviewers": list(self.reviewers),
                "escalation_reviewers": list(self.escalation_reviewers),
                "created_by": self.created_by,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "removed_by": self.removed_by,
                "removed_at": self.removed_at.isoformat() if self.removed_at else None,
                "active": self.active}


@dataclass(frozen=True)
class PolicyDraft:
    """What a person asks for when adding a policy (checked by ``add``)."""

    name: str
    supervised: tuple[str, ...] = ()
    supervised_users: tuple[str, ...] = ()
    directions: tuple[str, ...] = DIRECTIONS
    lexicon: tuple[str, ...] = ()
    sample_percent: float = 0.0
    period: str = "weekly"
    seed: int | None = None
    exclude_senders: tuple[str, ...] = ()
    exclude_automated: bool = True
    reviewers: tuple[str, ...] = ()
    escalation_reviewers: tuple[str, ...] = ()


def add(vault: Vault, draft: PolicyDraft, actor: str) -> ReviewPolicy:
    """Check and store a policy (audited ``review-policy-add`` with the whole definition);
    InputError in one sentence for what cannot be used."""
    definition = _checked(vault, draft)
    seed = draft.seed if draft.seed is not None else secrets.randbelow(2**31)
    at = now()
    try:
        with vault.engine.begin() as conn:
            result = conn.execute(insert(schema.review_policies).values(
                name=definition["name"], definition=json.dumps(definition, sort_keys=True),
                seed=seed, created_by=actor, created_at=at))
            assert result.inserted_primary_key is not None
            policy_id = int(result.inserted_primary_key[0])
            audit.record(conn, actor, "review-policy-add",
                         {"policy": policy_id, "seed": seed, **definition})
    except DuplicateRow:
        raise InputError(f"there is a review policy named {definition['name']!r} "
                         "already.") from None
    return get(vault, str(policy_id))


def listed(vault: Vault, include_removed: bool = False) -> list[ReviewPolicy]:
    """Every policy by name (removed ones only when asked for)."""
    query = select(schema.review_policies).order_by(schema.review_policies.c.name)
    if not include_removed:
        query = query.where(schema.review_policies.c.removed_at.is_(None))
    with vault.engine.connect() as conn:
        return [_policy(row) for row in conn.execute(query)]


def get(vault: Vault, ref: str) -> ReviewPolicy:
    """A policy by name or id (removed ones too)."""
    with vault.engine.connect() as conn:
        return policy_row(conn, ref)


def policy_row(conn: Connection, ref: str) -> ReviewPolicy:
    """A policy by name or id within a connection."""
    table = schema.review_policies
    ref = ref.strip()
    where = table.c.id == int(ref) if ref.isascii() and ref.isdigit() and len(ref) < 12 \
        else table.c.name == ref
    row = conn.execute(select(table).where(where)).first()
    if row is None:
        raise NotFoundError(f"there is no review policy {ref[:MAX_NAME]!r}.")
    return _policy(row)


def remove(vault: Vault, ref: str, actor: str) -> ReviewPolicy:
    """Stop a policy's runs (its queue, decisions and reports stay); audited."""
    with vault.engine.begin() as conn:
        policy = policy_row(conn, ref)
        if not policy.active:
            raise InputError(f"the review policy {policy.name!r} was removed already.")
        conn.execute(update(schema.review_policies)
                     .where(schema.review_policies.c.id == policy.id)
                     .values(removed_at=now(), removed_by=actor))
        audit.record(conn, actor, "review-policy-remove", {"policy": policy.id,
                                                           "name": policy.name})
    return get(vault, str(policy.id))


def supervised_people(vault: Vault, policy: ReviewPolicy) -> dict[str, tuple[str, ...]]:
    """Each supervised person and their addresses: a listed address is a person of its own,
    a listed user is one person with every address they have now (a removed user: none)."""
    people: dict[str, tuple[str, ...]] = {a: (a,) for a in policy.supervised}
    for name in policy.supervised_users:
        try:
            people[name] = get_user(vault, name).addresses
        except NotFoundError:
            people[name] = ()
    return people


def _checked(vault: Vault, draft: PolicyDraft) -> dict[str, Any]:
    name = " ".join(draft.name.split())
    if not name or len(name) > MAX_NAME:
        raise InputError(f"a review policy needs a name of 1 to {MAX_NAME} characters.")
    if name.isdigit():
        raise InputError("a review policy's name cannot be only digits (ids are).")
    supervised = normal_addresses(draft.supervised)
    if any("@" not in a for a in supervised):
        raise InputError("a supervised address needs an @.")
    users = tuple(dict.fromkeys(u.strip().lower() for u in draft.supervised_users
                                if u.strip()))
    for user in users:
        get_user(vault, user)
    if not supervised and not users:
        raise InputError("a review policy supervises at least one address or user.")
    directions = tuple(dict.fromkeys(d.strip().lower() for d in draft.directions))
    wrong = [d for d in directions if d not in DIRECTIONS]
    if wrong or not directions:
        raise InputError(f"directions are {', '.join(DIRECTIONS)}, not "
                         f"{', '.join(wrong) or 'none'}.")
    lexicon = tuple(dict.fromkeys(" ".join(t.split()) for t in draft.lexicon if t.strip()))
    for term in lexicon:
        if len(term) > MAX_TERM:
            raise InputError(f"a lexicon term may have at most {MAX_TERM} characters.")
        try:
            node = parse_query(term)
        except QueryError as exc:
            raise InputError(f"the lexicon term {term!r} cannot be read: {exc}") from None
        if mentions(node, "hold") or mentions(node, "tag"):
            raise InputError(f"the lexicon term {term!r} uses hold: or tag:, which say "
                             "nothing about what a message contains.")
    if not 0 <= draft.sample_percent <= 100:
        raise InputError("the sample is a percentage from 0 to 100.")
    if not lexicon and draft.sample_percent == 0:
        raise InputError("a review policy needs a lexicon, a sample, or both.")
    if draft.period not in PERIODS:
        raise InputError(f"the period is {' or '.join(PERIODS)}, not {draft.period!r}.")
    if draft.seed is not None and not 0 <= draft.seed < 2**31:
        raise InputError("a seed is a whole number from 0 to 2147483647.")
    reviewers = _reviewers(vault, draft.reviewers)
    if not reviewers:
        raise InputError("a review policy needs at least one reviewer.")
    escalation = _reviewers(vault, draft.escalation_reviewers)
    return {"name": name, "supervised": list(supervised), "supervised_users": list(users),
            "directions": list(directions), "lexicon": list(lexicon),
            "sample_percent": float(draft.sample_percent), "period": draft.period,
            "exclude_senders": [s.strip().lower() for s in draft.exclude_senders
                                if s.strip()],
            "exclude_automated": draft.exclude_automated, "reviewers": list(reviewers),
            "escalation_reviewers": list(escalation)}


def _reviewers(vault: Vault, names: Iterable[str]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    for name in found:
        if Role.REVIEWER not in get_user(vault, name).roles:
            raise InputError(f"{name} is not a reviewer (give them the role reviewer).")
    return found


def _policy(row: Any) -> ReviewPolicy:
    d = json.loads(row.definition)
    return ReviewPolicy(
        id=row.id, name=row.name, supervised=tuple(d["supervised"]),
        supervised_users=tuple(d["supervised_users"]), directions=tuple(d["directions"]),
        lexicon=tuple(d["lexicon"]), sample_percent=float(d["sample_percent"]),
        period=d["period"], seed=row.seed, exclude_senders=tuple(d["exclude_senders"]),
        exclude_automated=bool(d["exclude_automated"]), reviewers=tuple(d["reviewers"]),
        escalation_reviewers=tuple(d["escalation_reviewers"]), created_by=row.created_by,
        created_at=from_epoch(row.created_at), removed_at=from_epoch(row.removed_at),
        removed_by=row.removed_by,
        terms={term: parse_query(term) for term in d["lexicon"]})
