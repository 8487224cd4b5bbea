"""Scope (directions, exclusions), queues, decisions, escalation, tags and the report on a
small vault of built mail; every decision, escalation and tag audited."""

from __future__ import annotations

import csv
import io

import pytest

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.errors import InputError, NotFoundError, PermissionDenied, QueryError
from mailvault.store import audit
from mailvault.usecases import finding, reviewing
from mailvault.usecases.reviewing import PolicyDraft
from mailvault.vault import Vault
from tests.review.conftest import OFFICER, RITA, SAM

BOB = Principal("bob", frozenset({Role.USER}), ("bob@corp.example",))
AUDITOR = Principal("audrey", frozenset({Role.AUDITOR}))


def policy(vault: Vault, name: str = "bob", **draft: object) -> None:
    base: dict[str, object] = {
        "supervised_users": ("bob",), "lexicon": ("guarantee*", 'body:"off the books"'),
        "reviewers": ("rita",), "escalation_reviewers": ("sam",), "period": "daily",
        "exclude_senders": ("@alerts.example",)}
    reviewing.add_policy(vault, OFFICER, PolicyDraft(name=name, **{**base, **draft}))
    reviewing.run(vault, OFFICER, name)


def item_of(who: Principal, vault: Vault, message_id: int) -> int:
    return next(i.id for i in reviewing.queue(vault, who, include_decided=True)
                if i.message_id == message_id)


def actions(vault: Vault, *names: str) -> list[tuple[str, str, dict[str, object]]]:
    with vault.engine.connect() as conn:
        return [(e.actor, e.action, e.detail) for e in audit.entries(conn)
                if e.action in names]


def test_scope_follows_directions_and_exclusions(small: tuple[Vault, dict[str, int]]) -> None:
    vault, mail = small
    policy(vault)
    queued = {i.message_id: i for i in reviewing.queue(vault, RITA)}
    # Automated mail (List-Id, Auto-Submitted, Precedence bulk) and a configured sender are
    # left out; heidi's mail has no supervised party; "internal" has no lexicon term.
    assert set(queued) == {mail["out"], mail["in"]}
    assert queued[mail["out"]].reasons == ['body:"off the books"', "guarantee*"]
    assert queued[mail["in"]].reasons == ["guarantee*"]
    policy(vault, "outbound only", directions=("outbound",), lexicon=("guarantee*", "lunch"))
    policy(vault, "internal only", directions=("internal",), lexicon=("guarantee*", "lunch"))
    by_policy: dict[str, set[int]] = {}
    for i in reviewing.queue(vault, RITA):
        by_policy.setdefault(i.policy, set()).add(i.message_id)
    assert by_policy["outbound only"] == {mail["out"]}
    assert by_policy["internal only"] == {mail["internal"]}
    policy(vault, "keep automated", exclude_automated=False, exclude_senders=())
    kept = {i.message_id for i in reviewing.queue(vault, RITA, policy="keep automated")}
    assert kept == {mail[k] for k in ("out", "in", "list", "auto", "bulk", "noreply")}


def test_configured_internal_domains_decide_the_direction(
        small: tuple[Vault, dict[str, int]]) -> None:
    vault, mail = small
    vault.settings.review.internal_domains = ["corp.example", "other.example"]
    policy(vault, directions=("internal",), lexicon=("guarantee*",))
    assert {i.message_id for i in reviewing.queue(vault, RITA)} == {mail["out"], mail["in"]}


def test_decisions_escalations_and_tags_are_audited(small: tuple[Vault, dict[str, int]]
                                                    ) -> None:
    vault, mail = small
    policy(vault)
    out, inbound = item_of(RITA, vault, mail["out"]), item_of(RITA, vault, mail["in"])
    with pytest.raises(InputError, match="needs a note"):
        reviewing.decide(vault, RITA, [out], "violation")
    with pytest.raises(InputError, match="needs a note"):
        reviewing.decide(vault, RITA, [out], "escalate", "  ")
    assert reviewing.queue(vault, SAM) == []
    reviewing.decide(vault, RITA, [out], "escalate", "promises returns")
    assert [i.id for i in reviewing.queue(vault, SAM)] == [out]
    assert [i.id for i in reviewing.queue(vault, RITA)] == [inbound]
    with pytest.raises(InputError, match="not waiting for your decision"):
        reviewing.decide(vault, RITA, [out], "no_issue")
    (decided,) = reviewing.decide(vault, SAM, [out], "violation", "confirmed")
    assert (decided.state, decided.decided_by, decided.level) == ("violation", "sam", 2)
    assert reviewing.add_tag(vault, RITA, inbound, "Follow-Up") == ["follow-up"]
    with pytest.raises(InputError, match="already"):
        reviewing.add_tag(vault, RITA, inbound, "follow-up")
    reviewing.decide(vault, RITA, [inbound], "no_issue")
    assert [(a, b) for a, b, _ in actions(vault, "review-decision", "review-escalate",
                                           "review-tag")] == [
        ("rita", "review-escalate"), ("sam", "review-decision"), ("rita", "review-tag"),
        ("rita", "review-decision")]
    escalation = actions(vault, "review-escalate")[0][2]
    assert escalation["note"] == "promises returns" and escalation["message"] == mail["out"]
    assert actions(vault, "review-tag")[0][2]["tag"] == "follow-up"


def test_the_one_who_escalated_cannot_decide_at_the_second_level(
        small: tuple[Vault, dict[str, int]]) -> None:
    vault, mail = small
    policy(vault, escalation_reviewers=("rita", "sam"))
    out = item_of(RITA, vault, mail["out"])
    reviewing.decide(vault, RITA, [out], "escalate", "look again")
    with pytest.raises(InputError, match="another reviewer"):
        reviewing.decide(vault, RITA, [out], "no_issue")
    reviewing.decide(vault, SAM, [out], "no_issue", "fine after all")


def test_a_bulk_decision_is_all_or_nothing(small: tuple[Vault, dict[str, int]]) -> None:
    vault, _mail = small
    policy(vault)
    items = [i.id for i in reviewing.queue(vault, RITA)]
    with pytest.raises(NotFoundError):
        reviewing.decide(vault, RITA, [*items, 999], "no_issue")
    assert len(reviewing.queue(vault, RITA)) == len(items)
    decided = reviewing.decide(vault, RITA, items, "no_issue")
    assert {i.state for i in decided} == {"no_issue"} and reviewing.queue(vault, RITA) == []
    bulk = actions(vault, "review-decision")
    assert len(bulk) == len(items) and all(d["bulk"] for _, _, d in bulk)
    assert ("rita", "denied") in [(e[0], e[1]) for e in actions(vault, "denied")]


def test_tags_are_searchable_at_once_by_reviewers_and_auditors_only(
        small: tuple[Vault, dict[str, int]]) -> None:
    vault, mail = small
    policy(vault)
    inbound = item_of(RITA, vault, mail["in"])
    assert finding.count(vault, AUDITOR, "tag:follow-up") == 0
    reviewing.add_tag(vault, RITA, inbound, "follow-up")
    for who in (AUDITOR, RITA):
        assert {r.id for r in finding.search(vault, who, "tag:follow-up").rows} == \
            {mail["in"]}
        assert finding.count(vault, who, "tag:follow*") == 1
        assert finding.count(vault, who, "-tag:follow-up guarantee*") >= 1
    with pytest.raises(QueryError, match="auditors and reviewers"):
        finding.search(vault, BOB, "tag:follow-up")
    reviewing.remove_tag(vault, RITA, inbound, "follow-up")
    assert finding.count(vault, AUDITOR, "tag:follow-up") == 0


def test_a_reviewer_reaches_only_their_queue(small: tuple[Vault, dict[str, int]]) -> None:
    vault, mail = small
    policy(vault)
    queued = {mail["out"], mail["in"]}
    assert {r.id for r in finding.search(vault, RITA, "").rows} == queued
    assert finding.count(vault, RITA, "board") == 0
    finding.open_message(vault, RITA, str(mail["out"]))
    with pytest.raises(NotFoundError, match="review queues"):
        finding.open_message(vault, RITA, str(mail["other"]))
    with pytest.raises(NotFoundError, match="review queues"):
        finding.raw_message(vault, RITA, str(mail["internal"]), "test")
    assert finding.search(vault, SAM, "").total == 0
    with pytest.raises(NotFoundError):
        reviewing.open_item(vault, SAM, item_of(RITA, vault, mail["out"]))
    with pytest.raises(PermissionDenied):
        reviewing.queue(vault, BOB)
    with pytest.raises(PermissionDenied):
        reviewing.add_policy(vault, RITA, PolicyDraft(name="mine", supervised=("x@y.z",),
                                                      lexicon=("a",), reviewers=("rita",)))
    denied = [d for _, _, d in actions(vault, "denied")]
    assert {d["action"] for d in denied} >= {"view", "download", "review-item"}


def test_the_report_counts_and_its_csv(small: tuple[Vault, dict[str, int]]) -> None:
    vault, mail = small
    policy(vault, sample_percent=100, seed=5)
    out = item_of(RITA, vault, mail["out"])
    reviewing.decide(vault, RITA, [out], "escalate", "check")
    reviewing.decide(vault, SAM, [out], "violation", "yes")
    report = reviewing.report(vault, AUDITOR, "bob")
    by_day = {p.period: p for p in report.periods}
    # Mail in scope: out (4th), in (5th), internal (6th); automated and excluded left out.
    assert {k: v.in_scope for k, v in by_day.items()} == {
        "2024-03-04": 1, "2024-03-05": 1, "2024-03-06": 1}
    assert {k: v.sampled for k, v in by_day.items()} == {
        "2024-03-04": 1, "2024-03-05": 1, "2024-03-06": 1}
    assert (by_day["2024-03-04"].violations, by_day["2024-03-04"].escalated,
            by_day["2024-03-04"].reviewed, by_day["2024-03-04"].pending) == (1, 1, 1, 0)
    assert by_day["2024-03-05"].pending == 1 and by_day["2024-03-06"].lexicon_hits == 0
    assert by_day["2024-03-04"].term_hits == {"guarantee*": 1, 'body:"off the books"': 1}
    assert by_day["2024-03-04"].hit_rate("guarantee*") == 1.0
    assert {r.reviewer: (r.decisions, r.escalated, r.violations)
            for r in report.reviewers} == {"rita": (1, 1, 0), "sam": (1, 0, 1)}
    rows = list(csv.DictReader(io.StringIO(reviewing.periods_csv(report))))
    assert [r["period"] for r in rows] == sorted(by_day)
    assert rows[0]["hits: guarantee*"] == "1" and rows[0]["violations"] == "1"
    reviewers = list(csv.DictReader(io.StringIO(reviewing.reviewers_csv(report))))
    assert {r["reviewer"]: r["decisions"] for r in reviewers} == {"rita": "1", "sam": "1"}


def test_policies_refuse_what_cannot_be_used(small: tuple[Vault, dict[str, int]]) -> None:
    vault, _mail = small
    cases = [({"lexicon": ("subject:(",)}, "cannot be read"),
             ({"lexicon": ("tag:x",)}, "hold: or tag:"),
             ({"reviewers": ("bob",)}, "is not a reviewer"),
             ({"directions": ("sideways",)}, "directions are"),
             ({"sample_percent": 120.0}, "percentage"),
             ({"period": "monthly"}, "daily or weekly"),
             ({"lexicon": (), "sample_percent": 0.0}, "lexicon, a sample")]
    for change, sentence in cases:
        draft = {"supervised": ("bob@corp.example",), "lexicon": ("x",),
                 "reviewers": ("rita",), **change}
        with pytest.raises(InputError, match=sentence):
            reviewing.add_policy(vault, OFFICER, PolicyDraft(name="p", **draft))
    assert reviewing.list_policies(vault, OFFICER) == []
    policy(vault, "p")
    with pytest.raises(InputError, match="already"):
        policy(vault, "p")
    removed = reviewing.remove_policy(vault, OFFICER, "p")
    assert not removed.active and reviewing.list_policies(vault, OFFICER) == []
    assert reviewing.run(vault, OFFICER) == []
    assert [a for _, a, _ in actions(vault, "review-policy-add", "review-policy-remove")] == \
        ["review-policy-add", "review-policy-remove"]
