"""Data subject requests: the person report (every message an address is party to, the
envelope included, by tier, with retention and holds) and erasure (only what has no
retention obligation and no hold goes, by disposition; the rest stays with its reason)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailvault.accounts.principal import Principal, local_operator
from mailvault.accounts.roles import Role
from mailvault.compliance import holds, retention, tiers
from mailvault.errors import InputError, PermissionDenied
from mailvault.ingest.pipeline import Outcome, Pipeline
from mailvault.records import Incoming, Provenance
from mailvault.store import audit, catalog, schema
from mailvault.usecases import subjects
from mailvault.vault import Vault
from tests.support import build_message, invoke

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=3 * 365)
RECENT = NOW - timedelta(days=10)
DANA = "dana@example.org"
OPERATOR = local_operator("ops")


def _archive(vault: Vault, items: list[tuple[bytes, tuple[str, ...]]]) -> list[int]:
    """Archive built messages, each with the envelope recipients given (journal copies)."""
    incoming = [Incoming(raw, Provenance(kind="smtp", source="journal", envelope_to=rcpts,
                                         envelope_from="mta@example.org",
                                         received_at=NOW - timedelta(seconds=i)))
                for i, (raw, rcpts) in enumerate(items)]
    outcomes: list[Outcome] = []
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        pipeline.archive_many(incoming, on_batch=outcomes.extend)
    return [o.message_id for o in outcomes if o.message_id is not None]


@pytest.fixture
def people(small_vault: Vault) -> dict[str, int]:
    """Dana's mail: erasable, held, kept by a policy, Bcc'd (envelope only), recent; and
    someone else's expired message."""
    names = ["sent", "held", "contract", "bcc", "recent", "unrelated"]
    ids = _archive(small_vault, [
        (build_message(subject="sent by dana", sender=DANA, date=OLD), ()),
        (build_message(subject="held", sender="witness@example.org", to=[DANA], date=OLD),
         ()),
        (build_message(subject="contract terms", cc=[f"Dana <{DANA.upper()}>"], date=OLD),
         ()),
        (build_message(subject="blind copy", date=OLD), (DANA,)),
        (build_message(subject="recent", to=[DANA], date=RECENT), ()),
        (build_message(subject="someone else", date=OLD), ()),
    ])
    assert len(ids) == len(names)
    retention.set_default(small_vault, "1y", "date", "admin")
    retention.add_policy(small_vault, "contracts", "query", "subject:contract", "10y", "date",
                         "admin")
    holds.place(small_vault, "matter-7", custodian="witness@example.org", query=None,
                date_from=None, date_to=None, reason="litigation", owner="legal",
                actor="admin")
    by_name = dict(zip(names, ids, strict=True))
    tiers.run_job(small_vault, tiers.create_job(small_vault, [by_name["bcc"]], "deep", "",
                                                "admin").id)
    return by_name


def test_report_lists_every_message_the_address_is_party_to(
        small_vault: Vault, people: dict[str, int]) -> None:
    found = subjects.person_report(small_vault, OPERATOR, " Dana@Example.org ")
    by_id = {m.row.id: m for m in found.messages}
    assert set(by_id) == {people[n] for n in ("sent", "held", "contract", "bcc", "recent")}
    assert found.by_tier == {"active": 4, "deep": 1}
    assert by_id[people["held"]].holds == ("matter-7",)
    assert by_id[people["contract"]].policy == "contracts"
    contract_until = by_id[people["contract"]].retain_until
    assert contract_until is not None and contract_until.year == (OLD + timedelta(
        days=3650)).year
    assert {i for i, m in by_id.items() if m.erasable} == {people["sent"], people["bcc"]}
    assert "legal hold matter-7" in by_id[people["held"]].kept_because()
    assert by_id[people["held"]].kept_because(show_holds=False) == "a legal hold"
    assert "retention policy default until" in by_id[people["recent"]].kept_because()
    data = found.to_json()
    assert data["messages_total"] == 5 and data["erasable"] == 2 and data["held"] == 1
    with small_vault.engine.connect() as conn:
        entry = audit.last(conn, "person-report")
    assert entry is not None and entry.detail == {"address": DANA, "messages": 5}


def test_erasure_disposes_only_what_nothing_keeps(small_vault: Vault,
                                                  people: dict[str, int]) -> None:
    outcome = subjects.erase(small_vault, OPERATOR, DANA, "request 2026-114 (art. 17)")
    assert outcome.run is not None and outcome.disposed == 2
    with small_vault.engine.connect() as conn:
        left = set(conn.execute(select(schema.messages.c.id)).scalars())
        tombstones = set(conn.execute(select(schema.tombstones.c.message_id)).scalars())
        request = audit.last(conn, "erasure-request")
        proposal = audit.last(conn, "dispose-propose")
    assert tombstones == {people["sent"], people["bcc"]}
    assert left == {people[n] for n in ("held", "contract", "recent", "unrelated")}
    assert {m.row.id for m in outcome.kept} == {people[n] for n in ("held", "contract",
                                                                     "recent")}
    assert request is not None and request.detail["reason"] == "request 2026-114 (art. 17)"
    assert (request.detail["erasable"], request.detail["kept"]) == (2, 3)
    assert proposal is not None and proposal.detail["purpose"] == f"erasure request for {DANA}"
    after = subjects.person_report(small_vault, OPERATOR, DANA)
    assert len(after.messages) == 3 and not after.erasable
    assert [r["reason"] for r in after.requests] == ["request 2026-114 (art. 17)"]
    again = subjects.erase(small_vault, OPERATOR, DANA, "repeat")
    assert again.run is None and len(again.kept) == 3


def test_erasure_under_four_eyes_waits_for_approval(
        small_vault: Vault, people: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(small_vault.settings.retention, "four_eyes", True)
    outcome = subjects.erase(small_vault, OPERATOR, DANA, "request 7")
    assert outcome.run is not None and outcome.run.state == "proposed"
    assert outcome.run.candidates == 2 and outcome.disposed == 0
    assert len(subjects.person_report(small_vault, OPERATOR, DANA).messages) == 5


def test_who_may_ask(small_vault: Vault, people: dict[str, int]) -> None:
    admin = Principal("adam", frozenset({Role.ADMIN}))
    auditor = Principal("audrey", frozenset({Role.AUDITOR}))
    user = Principal("dana", frozenset({Role.USER}), (DANA,))
    for who in (admin, user):
        with pytest.raises(PermissionDenied):
            subjects.person_report(small_vault, who, DANA)
    for who in (auditor, user):
        with pytest.raises(PermissionDenied):
            subjects.erase(small_vault, who, DANA, "why")
    with pytest.raises(InputError):
        subjects.erase(small_vault, admin, DANA, "  ")
    with pytest.raises(InputError):
        subjects.person_report(small_vault, auditor, "not an address")
    with small_vault.engine.connect() as conn:
        assert audit.last(conn, "erasure-request") is None
        assert audit.last(conn, "person-report") is None


def test_the_command_line(tmp_path: Path, small_vault: Vault, people: dict[str, int]) -> None:
    path = small_vault.path
    small_vault.close()
    shown = invoke("person", "report", DANA, "--vault", path, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["messages_total"] == 5 and shown.json()["by_tier"]["deep"] == 1
    text = invoke("person", "report", DANA, "--vault", path)
    assert "5 messages (active 4, deep 1); 2 without a retention obligation" in text.text
    erased = invoke("person", "erase", DANA, "--reason", "ticket 9", "--vault", path)
    assert erased.exit_code == 0, erased.stderr
    assert "disposed of 2 messages" in erased.text and "3 messages stay" in erased.text
    assert "legal hold matter-7" in erased.text
    missing = invoke("person", "erase", DANA, "--vault", path)
    assert missing.exit_code != 0


def test_report_on_the_corpus_matches_the_catalogs_parties(enron: Vault) -> None:
    """On real mail: the report (from the index's party field) lists exactly the messages
    the catalog's address rows name the address in; under the default seven years, mail
    from 2000-2002 has no retention obligation left."""
    address = "phillip.allen@enron.com"
    found = subjects.person_report(enron, OPERATOR, address)
    with enron.engine.connect() as conn:
        expected = catalog.party_message_ids(conn, [address])
    assert len(expected) > 1000
    assert {m.row.id for m in found.messages} == expected
    assert sum(found.by_tier.values()) == len(expected)
    assert all(m.policy == "default" and m.retain_until is not None for m in found.messages)
    assert {m.erasable for m in found.messages} == {True}
