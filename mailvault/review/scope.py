"""Which messages a policy covers: those a supervised person is party to (sender, header
recipient, envelope sender or recipient), in one of the policy's directions, less the
exclusions (mailing lists, automated senders, configured senders), each filed under the
period (day or ISO week, UTC) of its Date (or, undated, of its archiving).

Directions are read against the organisation's mail domains (``[review] internal_domains``,
or when none are configured the domains of the policy's supervised addresses; a subdomain
counts as its domain): **inbound** the sender is outside them, **outbound** the sender is
inside and at least one recipient outside, **internal** the sender and every recipient are
inside. The sender is the From address (else Sender, else the envelope sender); recipients
are To, Cc, Bcc and the envelope recipients.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from mailvault.review.policies import ReviewPolicy, supervised_people
from mailvault.store import catalog, schema
from mailvault.vault import Vault

RECIPIENT_ROLES = ("to", "cc", "bcc", "envelope-to")
SENDER_ROLES = ("from", "sender", "envelope-from")
AUTOMATED_PRECEDENCE = ("bulk", "list", "junk")
_CHUNK = 500


@dataclass
class Scope:
    """A policy's messages now: each message's period, and for each supervised person and
    period the messages that person is party to (the pools the sample is drawn from)."""

    periods: dict[int, str] = field(default_factory=dict)
    pools: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    excluded: int = 0

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(self.periods)


def period_of(when: datetime, period: str) -> str:
    """The period a time falls in: ``2001-05-14`` (daily) or ``2001-W20`` (ISO week)."""
    when = when.astimezone(UTC)
    if period == "daily":
        return when.strftime("%Y-%m-%d")
    year, week, _day = when.isocalendar()
    return f"{year}-W{week:02d}"


def period_ended(key: str, at: datetime) -> bool:
    """Whether the period named ``key`` is over at ``at`` (its sample may then be drawn)."""
    return key < period_of(at, "weekly" if "-W" in key else "daily")


def internal_domains(vault: Vault, policy: ReviewPolicy,
                     people: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The domains that count as the organisation's for this policy."""
    configured = [d.strip().lower().lstrip("@") for d in vault.settings.review.internal_domains
                  if d.strip()]
    if configured:
        return tuple(configured)
    return tuple(sorted({a.rpartition("@")[2] for addresses in people.values()
                         for a in addresses if "@" in a}))


def in_domains(address: str, domains: Iterable[str]) -> bool:
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith("." + d) for d in domains)


def direction(sender: str | None, recipients: Iterable[str], domains: tuple[str, ...]) -> str:
    """inbound, outbound or internal (see the module's description)."""
    if sender is None or not in_domains(sender, domains):
        return "inbound"
    if any(not in_domains(r, domains) for r in recipients):
        return "outbound"
    return "internal"


def matches_sender(address: str | None, patterns: Iterable[str]) -> bool:
    """Whether a sender is one of these addresses or in one of these ``@domain``s."""
    if not address:
        return False
    address = address.lower()
    return any(address == p or (p.startswith("@") and address.endswith(p)) for p in patterns)


def automated(raw: bytes) -> bool:
    """Whether the header marks mail no person wrote: a mailing list (List-Id), an
    auto-reply or notification (Auto-Submitted other than ``no``), bulk (Precedence)."""
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    head = raw if end < 0 else raw[:end]
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    if headers.get("List-Id") is not None:
        return True
    submitted = str(headers.get("Auto-Submitted", "")).strip().lower()
    if submitted and submitted != "no":
        return True
    return str(headers.get("Precedence", "")).strip().lower() in AUTOMATED_PRECEDENCE


def policy_scope(vault: Vault, policy: ReviewPolicy) -> Scope:
    """The policy's messages as the archive holds them now."""
    people = supervised_people(vault, policy)
    domains = internal_domains(vault, policy, people)
    excluded_senders = (*policy.exclude_senders,
                        *(s.strip().lower() for s in vault.settings.review.automated_senders))
    owner: dict[str, set[str]] = defaultdict(set)
    for person, addresses in people.items():
        for address in addresses:
            owner[address].add(person)
    scope = Scope()
    pools: dict[tuple[str, str], list[int]] = defaultdict(list)
    with vault.engine.connect() as conn:
        candidates = sorted(catalog.party_message_ids(conn, sorted(owner)))
    for start in range(0, len(candidates), _CHUNK):
        chunk = candidates[start:start + _CHUNK]
        with vault.engine.connect() as conn:
            parties = _parties(conn, chunk)
            rows = {r.id: r for r in catalog.messages_by_id(conn, chunk)}
            archived = {r.id: r.archived_at for r in conn.execute(
                select(schema.messages.c.id, schema.messages.c.archived_at)
                .where(schema.messages.c.id.in_(chunk)))}
        for message_id in chunk:
            row = rows.get(message_id)
            if row is None:
                continue
            roles = parties.get(message_id, {})
            sender = next((roles[r][0] for r in SENDER_ROLES if roles.get(r)), None)
            recipients = [a for r in RECIPIENT_ROLES for a in roles.get(r, [])]
            if direction(sender, recipients, domains) not in policy.directions:
                continue
            if matches_sender(sender, excluded_senders) or (
                    policy.exclude_automated and automated(vault.read_raw(row))):
                scope.excluded += 1
                continue
            when = row.date or catalog.from_epoch(archived[message_id]) or datetime.now(UTC)
            key = period_of(when, policy.period)
            scope.periods[message_id] = key
            persons = {p for addresses in roles.values() for a in addresses
                       for p in owner.get(a, ())}
            for person in persons:
                pools[(person, key)].append(message_id)
    scope.pools = dict(pools)
    return scope


def _parties(conn: Connection, ids: list[int]) -> dict[int, dict[str, list[str]]]:
    a = schema.addresses
    found: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows = conn.execute(select(a.c.message_id, a.c.role, a.c.address)
                        .where(a.c.message_id.in_(ids)).order_by(a.c.message_id))
    for r in rows:
        found[r.message_id][r.role].append(r.address.lower())
    return found
