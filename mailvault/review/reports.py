"""What an examiner asks for: per policy and period, the messages in scope, sampled, hit by
the lexicon (and each term's hits and hit rate), reviewed, pending, escalated and found in
violation; per reviewer, how many decisions of each kind and how fast. As records, and as
CSV (cells that a spreadsheet would read as a formula are quoted with a leading ')."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from mailvault.review.policies import listed
from mailvault.store import schema
from mailvault.store.catalog import from_epoch
from mailvault.vault import Vault

DAY_S = 86_400


@dataclass(frozen=True)
class PeriodReport:
    """One policy's figures for one period."""

    policy: str
    period: str
    in_scope: int
    sampled: int
    lexicon_hits: int
    term_hits: dict[str, int]
    reviewed: int
    pending: int
    escalated: int
    violations: int

    def hit_rate(self, term: str) -> float:
        """The share of the messages in scope that ``term`` hit (0 when none are)."""
        return self.term_hits.get(term, 0) / self.in_scope if self.in_scope else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "period": self.period, "in_scope": self.in_scope,
                "sampled": self.sampled, "lexicon_hits": self.lexicon_hits,
                "terms": [{"term": t, "hits": n, "rate": round(self.hit_rate(t), 6)}
                          for t, n in self.term_hits.items()],
                "reviewed": self.reviewed, "pending": self.pending,
                "escalated": self.escalated, "violations": self.violations}


@dataclass(frozen=True)
class ReviewerReport:
    """One reviewer's throughput."""

    reviewer: str
    decisions: int
    no_issue: int
    escalated: int
    violations: int
    first: datetime | None
    last: datetime | None
    days: int

    @property
    def per_day(self) -> float:
        """Decisions per day the reviewer decided anything."""
        return self.decisions / self.days if self.days else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"reviewer": self.reviewer, "decisions": self.decisions,
                "no_issue": self.no_issue, "escalated": self.escalated,
                "violations": self.violations,
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None, "days": self.days,
                "per_day": round(self.per_day, 2)}


@dataclass(frozen=True)
class ReviewReport:
    """The figures of every period of the policies asked for, and every reviewer's."""

    periods: list[PeriodReport] = field(default_factory=list)
    reviewers: list[ReviewerReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"periods": [p.to_json() for p in self.periods],
                "reviewers": [r.to_json() for r in self.reviewers]}


def report(vault: Vault, policy: str | None = None) -> ReviewReport:
    """The report of one policy (name or id) or of all, removed ones included."""
    policies = listed(vault, include_removed=True)
    if policy is not None:
        policies = [p for p in policies if policy in (p.name, str(p.id))]
    ids = [p.id for p in policies]
    items, periods, decisions = (schema.review_items, schema.review_periods,
                                 schema.review_decisions)
    with vault.engine.connect() as conn:
        period_rows = list(conn.execute(select(periods).where(periods.c.policy_id.in_(ids))
                                        .order_by(periods.c.policy_id, periods.c.period)))
        states: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
        for r in conn.execute(select(items.c.policy_id, items.c.period, items.c.state,
                                     func.count()).where(items.c.policy_id.in_(ids))
                              .group_by(items.c.policy_id, items.c.period, items.c.state)):
            states[(r[0], r[1])][r[2]] += r[3]
        hit_items = Counter((r[0], r[1]) for r in conn.execute(
            select(items.c.policy_id, items.c.period)
            .where(items.c.policy_id.in_(ids), items.c.terms != "[]")))
        escalated = Counter((r[0], r[1]) for r in conn.execute(
            select(items.c.policy_id, items.c.period).distinct()
            .select_from(items.join(decisions, decisions.c.item_id == items.c.id))
            .where(items.c.policy_id.in_(ids), decisions.c.decision == "escalate")))
        decision_rows = list(conn.execute(
            select(decisions.c.reviewer, decisions.c.decision, decisions.c.at)
            .select_from(decisions.join(items, decisions.c.item_id == items.c.id))
            .where(items.c.policy_id.in_(ids))))
    names = {p.id: p for p in policies}
    found = []
    for r in period_rows:
        key = (r.policy_id, r.period)
        counted = states.get(key, Counter())
        hits = json.loads(r.hits)
        found.append(PeriodReport(
            policy=names[r.policy_id].name, period=r.period, in_scope=r.in_scope,
            sampled=r.sampled, lexicon_hits=hit_items.get(key, 0),
            term_hits={t: int(hits.get(t, 0)) for t in names[r.policy_id].lexicon},
            reviewed=counted["no_issue"] + counted["violation"],
            pending=counted["pending"] + counted["escalated"],
            escalated=escalated.get(key, 0), violations=counted["violation"]))
    return ReviewReport(found, _reviewers(decision_rows))


def _reviewers(rows: list[Any]) -> list[ReviewerReport]:
    by: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by[r.reviewer].append(r)
    found = []
    for name, mine in sorted(by.items()):
        kinds = Counter(r.decision for r in mine)
        times = sorted(r.at for r in mine)
        found.append(ReviewerReport(
            reviewer=name, decisions=len(mine), no_issue=kinds["no_issue"],
            escalated=kinds["escalate"], violations=kinds["violation"],
            first=from_epoch(times[0]), last=from_epoch(times[-1]),
            days=len({t // DAY_S for t in times})))
    return found


def periods_csv(result: ReviewReport) -> str:
    """The per-period figures as CSV: one row per policy and period, a hits and a rate
    column per lexicon term of the policies included."""
    terms = list(dict.fromkeys(t for p in result.periods for t in p.term_hits))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["policy", "period", "in_scope", "sampled", "lexicon_hits", "reviewed",
                     "pending", "escalated", "violations",
                     *(_cell(f"{kind}: {t}") for t in terms for kind in ("hits", "rate"))])
    for p in result.periods:
        cells: list[object] = [_cell(p.policy), p.period, p.in_scope, p.sampled,
                               p.lexicon_hits, p.reviewed, p.pending, p.escalated,
                               p.violations]
        for t in terms:
            cells += ([p.term_hits[t], f"{p.hit_rate(t):.6f}"] if t in p.term_hits
                      else ["", ""])
        writer.writerow(cells)
    return out.getvalue()


def reviewers_csv(result: ReviewReport) -> str:
    """Per-reviewer throughput as CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["reviewer", "decisions", "no_issue", "escalated", "violations", "first",
                     "last", "days", "per_day"])
    for r in result.reviewers:
        writer.writerow([_cell(r.reviewer), r.decisions, r.no_issue, r.escalated,
                         r.violations, r.first.isoformat() if r.first else "",
                         r.last.isoformat() if r.last else "", r.days, f"{r.per_day:.2f}"])
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
