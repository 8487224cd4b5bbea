"""A review run: each active policy's scope read again, its lexicon searched within it, the
sample of every ended period not drawn yet drawn, and what was found queued. An item says
why it is there (the lexicon terms that hit, and/or "sample"); a message is queued once per
policy, so running again adds no duplicate (an item found again for a new reason records
it). Each run of a policy is audited (``review-run``) with its counts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from mailvault.review.policies import ReviewPolicy, listed
from mailvault.review.sampling import draw_all
from mailvault.review.scope import period_ended, policy_scope
from mailvault.search.query import And, IdSet
from mailvault.store import audit, schema
from mailvault.store.catalog import now
from mailvault.vault import Vault


@dataclass(frozen=True)
class RunReport:
    """What one run of one policy found and queued."""

    policy: str
    in_scope: int
    excluded: int
    periods: int
    drawn_periods: int
    sampled: int
    lexicon_hits: int
    added: int

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "in_scope": self.in_scope, "excluded": self.excluded,
                "periods": self.periods, "drawn_periods": self.drawn_periods,
                "sampled": self.sampled, "lexicon_hits": self.lexicon_hits,
                "added": self.added}


def run_all(vault: Vault, actor: str, at: datetime | None = None) -> list[RunReport]:
    """Run every active policy, by name."""
    return [run_policy(vault, policy, actor, at) for policy in listed(vault)]


def lexicon_hits(vault: Vault, policy: ReviewPolicy, ids: frozenset[int]) -> dict[str, set[int]]:
    """For each lexicon term, the messages among ``ids`` it matches."""
    if not ids:
        return {term: set() for term in policy.terms}
    within = IdSet(ids)
    return {term: set(vault.index.ids(And((node, within))))
            for term, node in policy.terms.items()}


def run_policy(vault: Vault, policy: ReviewPolicy, actor: str,
               at: datetime | None = None) -> RunReport:
    """Run one policy now (``at``: the time that decides which periods have ended)."""
    at = at or datetime.now(UTC)
    scope = policy_scope(vault, policy)
    hits = lexicon_hits(vault, policy, scope.ids)
    periods = Counter(scope.periods.values())
    hits_by_period: dict[str, Counter[str]] = {key: Counter() for key in periods}
    for term, found in hits.items():
        for message_id in found:
            hits_by_period[scope.periods[message_id]][term] += 1
    items = schema.review_items
    table = schema.review_periods
    added = 0
    with vault.engine.begin() as conn:
        known = {r.period: r for r in conn.execute(
            select(table).where(table.c.policy_id == policy.id))}
        to_draw = sorted(key for key in periods
                         if not (key in known and known[key].drawn) and period_ended(key, at))
        drawn = (draw_all(scope.pools, policy.sample_percent, policy.seed, to_draw)
                 if policy.sample_percent > 0 else set())
        drawn_by_period = Counter(scope.periods[m] for m in drawn)
        stamp = now()
        for key, count in sorted(periods.items()):
            values = {"in_scope": count, "hits": json.dumps(dict(hits_by_period[key]),
                                                            sort_keys=True), "ran_at": stamp}
            if key in to_draw:
                values.update(drawn=True, sampled=drawn_by_period[key])
            if key in known:
                conn.execute(update(table).where(table.c.id == known[key].id).values(**values))
            else:
                conn.execute(insert(table).values(policy_id=policy.id, period=key,
                                                  sampled=values.pop("sampled", 0),
                                                  drawn=values.pop("drawn", False), **values))
        terms_of: dict[int, list[str]] = {}
        for term, found in hits.items():
            for message_id in found:
                terms_of.setdefault(message_id, []).append(term)
        queued = {r.message_id: r for r in conn.execute(
            select(items.c.id, items.c.message_id, items.c.terms, items.c.sampled)
            .where(items.c.policy_id == policy.id))}
        new_rows = []
        for message_id in sorted(set(terms_of) | drawn):
            terms = sorted(terms_of.get(message_id, []))
            sampled = message_id in drawn
            old = queued.get(message_id)
            if old is None:
                new_rows.append({"policy_id": policy.id, "message_id": message_id,
                                 "period": scope.periods[message_id],
                                 "terms": json.dumps(terms), "sampled": sampled,
                                 "state": "pending", "level": 1, "created_at": stamp,
                                 "note": ""})
                continue
            merged = sorted(set(json.loads(old.terms)) | set(terms))
            if merged != json.loads(old.terms) or (sampled and not old.sampled):
                conn.execute(update(items).where(items.c.id == old.id).values(
                    terms=json.dumps(merged), sampled=bool(old.sampled or sampled)))
        if new_rows:
            conn.execute(insert(items), new_rows)
        added = len(new_rows)
        report = RunReport(policy=policy.name, in_scope=len(scope.periods),
                           excluded=scope.excluded, periods=len(periods),
                           drawn_periods=len(to_draw), sampled=len(drawn),
                           lexicon_hits=len(terms_of), added=added)
        audit.record(conn, actor, "review-run", {"policy": policy.id, "seed": policy.seed,
                                                 **report.to_json()})
    return report
