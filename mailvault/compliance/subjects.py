"""Data subjects (GDPR articles 15 and 17): what the archive holds about one address, until
when and why, and erasure requests.

**Party to.** A message is about an address when the address is party to it by the rule
the user role's own-mail scope and the ``party:`` operator use (the index's ``party`` field,
``query.party``): a header address (From, Sender, To, Cc, Bcc, Reply-To) or an envelope
sender or recipient of any arrival, so Bcc and journal copies are included.

**Retention obligation.** A message has one while its retain-until date (recomputed now
from the policies, ``retention.compute``: the longest applicable period wins) is in the
future: the archive exists to keep it that long, and disposition would refuse it too. A
legal hold keeps a message whatever its date. An erasure request removes, by disposition,
only the person's messages that have neither; every other one stays, and the report says
why (the hold names, or the policy and the date it runs to). An erasure does not shorten a
retention period: such a message goes at its date, by the ordinary disposition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailvault.compliance import holds, retention
from mailvault.errors import InputError
from mailvault.search.query import party
from mailvault.store import audit, catalog
from mailvault.store.catalog import MessageRow, from_epoch, now

if TYPE_CHECKING:
    from mailvault.vault import Vault

ERASURE = "erasure-request"
_BATCH = 500


@dataclass(frozen=True)
class SubjectMessage:
    """One message the address is party to, how long it is kept, and why."""

    row: MessageRow
    retain_until: datetime | None
    policy: str
    holds: tuple[str, ...]
    obligation: str

    @property
    def erasable(self) -> bool:
        """No retention obligation and no hold: an erasure request removes it."""
        return not self.obligation and not self.holds

    def kept_because(self, show_holds: bool = True) -> str:
        """Why the message stays ('' when erasable); hold names only for those who may see
        them."""
        reasons = []
        if self.holds:
            reasons.append("legal hold " + ", ".join(self.holds) if show_holds
                           else "a legal hold")
        if self.obligation:
            reasons.append(self.obligation)
        return "; ".join(reasons)

    def to_json(self, show_holds: bool = True) -> dict[str, Any]:
        data = {**self.row.to_json(),
                "retain_until": self.retain_until.isoformat() if self.retain_until else None,
                "policy": self.policy, "erasable": self.erasable,
                "kept_because": self.kept_because(show_holds) or None}
        if show_holds:
            data["holds"] = list(self.holds)
        return data


@dataclass
class SubjectReport:
    """Everything the archive holds about one address, at one moment."""

    address: str
    at: datetime | None
    messages: list[SubjectMessage] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def by_tier(self) -> dict[str, int]:
        return dict(sorted(Counter(m.row.tier for m in self.messages).items()))

    @property
    def erasable(self) -> list[SubjectMessage]:
        return [m for m in self.messages if m.erasable]

    def to_json(self, show_holds: bool = True) -> dict[str, Any]:
        return {"address": self.address, "at": self.at.isoformat() if self.at else None,
                "messages_total": len(self.messages), "by_tier": self.by_tier,
                "erasable": len(self.erasable),
                "held": sum(1 for m in self.messages if m.holds),
                "messages": [m.to_json(show_holds) for m in self.messages],
                "erasure_requests": self.requests}


def normal_address(text: str) -> str:
    """The address as the index and catalog hold it (lower case); InputError if it is not
    one."""
    address = text.strip().lower()
    local, _at, domain = address.partition("@")
    if not local or not domain or any(c.isspace() for c in address):
        raise InputError(f"{text!r} is not a mail address (name@domain).")
    return address


def report(vault: Vault, address: str) -> SubjectReport:
    """Every message ``address`` is party to, oldest first, with its tier, retain-until
    date (recomputed now), deciding policy, holds and, unless erasable, why it is kept;
    and the erasure requests recorded for the address."""
    address = normal_address(address)
    at = now()
    ids = sorted(vault.index.ids(party(address)))
    computed = retention.compute(vault, ids)
    names = {p.id: p.name for p in retention.policies(vault)}
    covered = holds.held(vault)
    result = SubjectReport(address, from_epoch(at))
    for start in range(0, len(ids), _BATCH):
        with vault.engine.connect() as conn:
            rows = catalog.messages_by_id(conn, ids[start:start + _BATCH])
        for row in rows:
            until, policy_id = computed.get(row.id, (None, None))
            policy = names.get(policy_id, "") if policy_id is not None else ""
            result.messages.append(SubjectMessage(
                row, from_epoch(until), policy, tuple(covered.get(row.id, ())),
                _obligation(until, policy, at)))
    result.messages.sort(key=lambda m: (m.row.date is None, m.row.date or at, m.row.id))
    result.requests = requests(vault, address)
    return result


def _obligation(until: int | None, policy: str, at: int) -> str:
    """The retention obligation in words ('' when its date has passed)."""
    if until is None:
        return "no retain-until date could be computed"
    if until <= at:
        return ""
    stamp = from_epoch(until)
    return f"retention policy {policy} until {stamp.date().isoformat() if stamp else until}"


def record_request(vault: Vault, actor: str, subject: SubjectReport, reason: str) -> None:
    """Record an erasure request before anything is disposed of: who, for whom, why, what
    is erasable and how much stays (the disposition run it starts names it)."""
    with vault.engine.begin() as conn:
        audit.record(conn, actor, ERASURE, {
            "address": subject.address, "reason": reason,
            "messages": len(subject.messages), "erasable": len(subject.erasable),
            "kept": len(subject.messages) - len(subject.erasable),
            "sha256": sorted(m.row.sha256 for m in subject.erasable)})


def requests(vault: Vault, address: str) -> list[dict[str, Any]]:
    """The erasure requests recorded for ``address``, oldest first."""
    found = []
    with vault.engine.connect() as conn:
        for entry in audit.newest_first(conn, ERASURE):
            if entry.detail.get("address") == address:
                found.append({"at": entry.at.isoformat(), "by": entry.actor,
                              "reason": entry.detail.get("reason"),
                              "erasable": entry.detail.get("erasable"),
                              "kept": entry.detail.get("kept")})
    return found[::-1]
