"""Supervisory review: policies and runs (the administrator's: SETTINGS), queues, decisions
and tags (a reviewer's: REVIEW), reports (REVIEW or AUDIT_READ).

A reviewer reaches only the messages of the items in their queues (``review.queues``): an
item of another queue is "not found" and the attempt audited (``denied``), as a user's
look at another's mail is. Opening an item is audited as a view of its message; every
decision, escalation and tag is audited by ``review.queues`` and ``review.tags``. Listing
policies, queues and reports shows names and counts, not mail, and is not audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mailvault.accounts.principal import Principal, require, require_any
from mailvault.accounts.roles import Permission
from mailvault.errors import NotFoundError
from mailvault.review import policies, queues, reports, runs, tags
from mailvault.review.policies import PolicyDraft, ReviewPolicy
from mailvault.review.queues import QueueItem
from mailvault.review.reports import ReviewReport, periods_csv, reviewers_csv
from mailvault.review.runs import RunReport
from mailvault.search.query import Node
from mailvault.store import audit
from mailvault.usecases.finding import OpenedMessage, open_message
from mailvault.vault import Vault

# The report as CSV, for the faces (one per-period table, one per-reviewer table).
__all__ = ["PolicyDraft", "ReviewReport", "periods_csv", "reviewers_csv"]


@dataclass(frozen=True)
class OpenedItem:
    """An item as its reviewer works it: the item, its message (read and hash-checked), the
    queries of the terms that hit (for highlighting) and the message's tags."""

    item: QueueItem
    message: OpenedMessage
    hit_terms: dict[str, Node]
    tags: list[str]


def add_policy(vault: Vault, who: Principal, draft: PolicyDraft) -> ReviewPolicy:
    """Add a review policy (audited ``review-policy-add``)."""
    require(who, Permission.SETTINGS)
    return policies.add(vault, draft, who.name)


def list_policies(vault: Vault, who: Principal,
                  include_removed: bool = False) -> list[ReviewPolicy]:
    """Every review policy (not audited: names and rules, no mail)."""
    require_any(who, Permission.SETTINGS, Permission.REVIEW, Permission.AUDIT_READ)
    return policies.listed(vault, include_removed)


def show_policy(vault: Vault, who: Principal, ref: str) -> ReviewPolicy:
    """One review policy by name or id."""
    require_any(who, Permission.SETTINGS, Permission.REVIEW, Permission.AUDIT_READ)
    return policies.get(vault, ref)


def remove_policy(vault: Vault, who: Principal, ref: str) -> ReviewPolicy:
    """Stop a policy's runs; its queue and reports stay (audited ``review-policy-remove``)."""
    require(who, Permission.SETTINGS)
    return policies.remove(vault, ref, who.name)


def run(vault: Vault, who: Principal, ref: str | None = None,
        at: datetime | None = None) -> list[RunReport]:
    """Run one policy (name or id) or every active one; each run audited ``review-run``."""
    require(who, Permission.SETTINGS)
    if ref is None:
        return runs.run_all(vault, who.name, at)
    policy = policies.get(vault, ref)
    if not policy.active:
        raise NotFoundError(f"the review policy {policy.name!r} was removed: it runs no more.")
    return [runs.run_policy(vault, policy, who.name, at)]


def queue(vault: Vault, who: Principal, *, include_decided: bool = False,
          policy: str | None = None, limit: int = 500, offset: int = 0) -> list[QueueItem]:
    """The items ``who`` works (open ones; decided ones too when asked for)."""
    require(who, Permission.REVIEW)
    return queues.queue(vault, who.name, include_decided=include_decided, policy=policy,
                        limit=limit, offset=offset)


def open_item(vault: Vault, who: Principal, item_id: int) -> OpenedItem:
    """One of ``who``'s items with its message (audited as a view of the message)."""
    found = _item(vault, who, item_id, "review-item")
    policy = policies.get(vault, str(found.policy_id))
    message = open_message(vault, who, str(found.message_id))
    return OpenedItem(found, message, {t: policy.terms[t] for t in found.terms
                                       if t in policy.terms},
                      tags.tags_of(vault, found.message_id))


def decide(vault: Vault, who: Principal, item_ids: Sequence[int], decision: str,
           note: str = "") -> list[QueueItem]:
    """Decide items of ``who``'s queues: no_issue, escalate or violation (a note required
    for the last two); several at once for a bulk decision. Each audited."""
    require(who, Permission.REVIEW)
    try:
        return queues.decide(vault, who.name, item_ids, decision, note)
    except NotFoundError:
        _denied(vault, who, "review-decide", ",".join(str(i) for i in item_ids))
        raise


def add_tag(vault: Vault, who: Principal, item_id: int, tag: str) -> list[str]:
    """Tag the message of one of ``who``'s items (audited ``review-tag``); its tags after."""
    found = _item(vault, who, item_id, "review-tag")
    tags.add_tag(vault, found.message_id, tag, who.name, found.id)
    return tags.tags_of(vault, found.message_id)


def remove_tag(vault: Vault, who: Principal, item_id: int, tag: str) -> list[str]:
    """Take a tag off the message of one of ``who``'s items (audited ``review-untag``)."""
    found = _item(vault, who, item_id, "review-untag")
    tags.remove_tag(vault, found.message_id, tag, who.name, found.id)
    return tags.tags_of(vault, found.message_id)


def report(vault: Vault, who: Principal, policy: str | None = None) -> ReviewReport:
    """The review report of one policy or all (counts only, not audited)."""
    require_any(who, Permission.REVIEW, Permission.AUDIT_READ)
    if policy is not None:
        policies.get(vault, policy)
    return reports.report(vault, policy)


def _item(vault: Vault, who: Principal, item_id: int, action: str) -> QueueItem:
    require(who, Permission.REVIEW)
    try:
        return queues.item(vault, who.name, item_id)
    except NotFoundError:
        _denied(vault, who, action, str(item_id))
        raise


def _denied(vault: Vault, who: Principal, action: str, ref: str) -> None:
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "denied", {"action": action, "ref": ref[:100]})
