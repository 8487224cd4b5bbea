"""Retention policies, legal holds and disposition, on small vaults of built messages whose
dates, folders and addresses each test chooses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailvault.accounts.principal import local_operator
from mailvault.compliance import disposition, holds, retention, tiers
from mailvault.compliance.verify import verify
from mailvault.errors import InputError, QueryError
from mailvault.search import indexing
from mailvault.search.query import parse
from mailvault.store import schema
from mailvault.store.volumes import walk_records
from mailvault.usecases import finding
from mailvault.vault import Vault
from tests.compliance.conftest import archive
from tests.support import Attachment, build_message, invoke, search_json, write_mbox

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=3 * 365)
RECENT = NOW - timedelta(days=10)
DAY = 86400


def stored_until(vault: Vault, message_id: int) -> tuple[int, str]:
    with vault.engine.connect() as conn:
        return retention.retain_until(conn, [message_id])[message_id]


def days_after(value: datetime, days: int) -> int:
    return int(value.timestamp()) + days * DAY


def snapshot(vault: Vault) -> dict[str, Any]:
    """Everything a disposition could change."""
    with vault.engine.connect() as conn:
        tables = {name: conn.execute(select(func.count()).select_from(table)).scalar()
                  for name, table in (("messages", schema.messages),
                                      ("addresses", schema.addresses),
                                      ("provenance", schema.provenance),
                                      ("parts", schema.parts),
                                      ("tombstones", schema.tombstones),
                                      ("retention", schema.retention),
                                      ("runs", schema.disposition_runs))}
    files = {str(p): p.stat().st_size for p in vault.path.glob("volumes/*/*.vol")}
    return {"tables": tables, "files": files, "indexed": vault.index.doc_count()}


def record_shas(vault: Vault) -> set[str]:
    """The hash in the header of every record in every volume file."""
    return {header.sha256.hex() for path in vault.path.glob("volumes/*/*.vol")
            for _, header in walk_records(path)}


def test_longest_applicable_period_wins(small_vault: Vault) -> None:
    plain, kept, legal = archive(small_vault, [
        build_message(subject="plain", date=OLD),
        build_message(subject="kept", date=OLD, sender="ceo@keep.example"),
        build_message(subject="legal", date=OLD, to=["counsel@law.example"]),
    ])
    retention.set_default(small_vault, "1y", "date", "admin")
    retention.add_policy(small_vault, "exec", "domain", "keep.example", "10y", "date", "admin")
    retention.add_policy(small_vault, "law", "address", "counsel@law.example", "5y", "date",
                         "admin")
    retention.add_policy(small_vault, "all-inbox", "folder", "INBOX", "2y", "date", "admin")
    assert stored_until(small_vault, plain) == (days_after(OLD, 730), "all-inbox")
    assert stored_until(small_vault, kept) == (days_after(OLD, 3650), "exec")
    assert stored_until(small_vault, legal) == (days_after(OLD, 1825), "law")
    (journaled,) = archive(small_vault, [build_message(subject="journaled", date=OLD)],
                           source="journal-1")
    retention.add_policy(small_vault, "journal", "source", "file:journal-1", "8y", "date",
                         "admin")
    assert stored_until(small_vault, journaled) == (days_after(OLD, 2920), "journal")
    assert stored_until(small_vault, plain)[1] == "all-inbox"


def test_periods_count_from_the_date_or_the_archive_date(small_vault: Vault) -> None:
    # NOW is the module's import time, which a long run of the suite leaves far behind.
    before = int(datetime.now(UTC).timestamp())
    (message_id,) = archive(small_vault, [build_message(date=OLD)])
    after = int(datetime.now(UTC).timestamp()) + 1
    retention.set_default(small_vault, "30d", "archived", "admin")
    until, _ = stored_until(small_vault, message_id)
    assert before + 30 * DAY <= until <= after + 30 * DAY
    retention.set_default(small_vault, "30d", "date", "admin")
    assert stored_until(small_vault, message_id)[0] == days_after(OLD, 30)


def test_policy_changes_recompute_and_are_audited(small_vault: Vault) -> None:
    (message_id,) = archive(small_vault, [build_message(subject="budget review", date=OLD)])
    retention.set_default(small_vault, "1y", "date", "admin")
    assert stored_until(small_vault, message_id)[1] == "default"
    retention.add_policy(small_vault, "budgets", "query", "subject:budget", "20y", "date", "admin")
    assert stored_until(small_vault, message_id) == (days_after(OLD, 7300), "budgets")
    retention.remove_policy(small_vault, "budgets", "admin")
    assert stored_until(small_vault, message_id) == (days_after(OLD, 365), "default")
    tiers.run_job(small_vault, tiers.create_job(small_vault, [message_id], "deep", "", "a").id)
    retention.add_policy(small_vault, "deep", "tier", "deep", "15y", "date", "admin")
    assert stored_until(small_vault, message_id)[1] == "deep"
    with small_vault.engine.connect() as conn:
        actions = conn.execute(select(schema.audit_log.c.action)).scalars().all()
    assert {"retention-default", "retention-add", "retention-remove"} <= set(actions)
    with pytest.raises(InputError):
        retention.remove_policy(small_vault, "default", "admin")


def test_dry_run_changes_nothing(small_vault: Vault) -> None:
    archive(small_vault, [build_message(subject=f"old {n}", date=OLD) for n in range(5)])
    retention.set_default(small_vault, "1y", "date", "admin")
    before = snapshot(small_vault)
    plan = disposition.dry_run(small_vault, "admin")
    assert len(plan.candidates) == 5
    assert snapshot(small_vault) == before


def test_dispose_deletes_only_expired_and_unheld(small_vault: Vault) -> None:
    shared = Attachment("contract.bin", bytes(range(256)) * 64)
    ids = archive(small_vault, [
        build_message(subject="expired plain", date=OLD, attachments=[shared]),
        build_message(subject="expired held", date=OLD, sender="witness@example.org",
                      attachments=[shared]),
        build_message(subject="recent", date=RECENT),
    ])
    expired, held, recent = ids
    with small_vault.engine.connect() as conn:
        expired_sha = conn.execute(select(schema.messages.c.sha256)
                                   .where(schema.messages.c.id == expired)).scalar_one()
    retention.set_default(small_vault, "1y", "date", "admin")
    holds.place(small_vault, "matter-7", custodian="witness@example.org", query=None,
                date_from=None, date_to=None, reason="litigation", owner="legal", actor="admin")
    run = disposition.dispose(small_vault, "admin")
    assert (run.state, run.disposed) == ("executed", 1)
    with small_vault.engine.connect() as conn:
        left = set(conn.execute(select(schema.messages.c.id)).scalars())
        addresses = conn.execute(select(func.count()).select_from(schema.addresses)
                                 .where(schema.addresses.c.message_id == expired)).scalar()
        tombstone = conn.execute(select(schema.tombstones)).one()
        parts = conn.execute(select(schema.parts.c.refs)).scalars().all()
    assert left == {held, recent}
    assert addresses == 0
    assert parts == [1], "the attachment the held message shares stays, with one user"
    assert (tombstone.message_id, tombstone.sha256, tombstone.policy) == (expired, expired_sha,
                                                                          "default")
    assert tombstone.approved_by == tombstone.proposed_by == "admin"
    assert tombstone.date == int(OLD.timestamp())
    assert list(small_vault.index.ids(parse("subject:expired"))) == [held]
    assert expired_sha not in record_shas(small_vault), "the disposed blob is gone from disk"
    report = json.loads(Path(run.report).read_text())
    assert [m["sha256"] for m in report["disposed"]] == [expired_sha]
    assert report["held_back"] == [{"id": held, "holds": ["matter-7"]}]
    assert report["approved_by"] == "admin"
    check = verify(small_vault, "admin")
    assert check.ok, check.problems


def test_released_hold_lets_disposal_happen(small_vault: Vault) -> None:
    archive(small_vault, [build_message(subject="memo", date=OLD)])
    retention.set_default(small_vault, "1y", "date", "admin")
    holds.place(small_vault, "q", custodian=None, query="subject:memo",
                date_from=OLD - timedelta(days=1), date_to=OLD + timedelta(days=1),
                reason="audit", owner="legal", actor="admin")
    assert disposition.dispose(small_vault, "admin").disposed == 0
    holds.release(small_vault, "q", "admin", "matter closed")
    assert disposition.dispose(small_vault, "admin").disposed == 1
    assert holds.holds(small_vault) == []
    assert holds.holds(small_vault, include_released=True)[0].released_by == "admin"


def test_hold_date_range_and_future_messages(small_vault: Vault) -> None:
    retention.set_default(small_vault, "1y", "date", "admin")
    hold = holds.place(small_vault, "custodian", custodian="bob@example.org", query=None,
                       date_from=OLD - timedelta(days=5), date_to=OLD + timedelta(days=5),
                       reason="subpoena", owner="legal", actor="admin")
    inside, outside = archive(small_vault, [
        build_message(subject="inside", date=OLD),
        build_message(subject="outside", date=OLD - timedelta(days=100)),
    ])
    assert holds.held_by(small_vault, hold) == {inside}
    run = disposition.dispose(small_vault, "admin")
    with small_vault.engine.connect() as conn:
        left = set(conn.execute(select(schema.messages.c.id)).scalars())
    assert run.disposed == 1 and left == {inside}
    assert outside not in left


def test_four_eyes(small_vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(small_vault.settings.retention, "four_eyes", True)
    first, second = archive(small_vault, [build_message(subject="a", date=OLD),
                                          build_message(subject="b", date=OLD)])
    retention.set_default(small_vault, "1y", "date", "admin")
    with pytest.raises(InputError):
        disposition.dispose(small_vault, "alice")
    run = disposition.propose(small_vault, "alice")
    assert (run.state, run.candidates) == ("proposed", 2)
    with pytest.raises(InputError):
        disposition.approve(small_vault, run.id, "alice")
    # A hold placed after the proposal wins at approval.
    holds.place(small_vault, "late", custodian=None, query="subject:b", date_from=None,
                date_to=None, reason="new matter", owner="legal", actor="carol")
    done = disposition.approve(small_vault, run.id, "bob")
    assert (done.state, done.disposed, done.approved_by) == ("executed", 1, "bob")
    with small_vault.engine.connect() as conn:
        tombstone = conn.execute(select(schema.tombstones)).one()
        left = set(conn.execute(select(schema.messages.c.id)).scalars())
    assert (tombstone.message_id, tombstone.proposed_by, tombstone.approved_by) == (
        first, "alice", "bob")
    assert left == {second}
    report = json.loads(Path(done.report).read_text())
    assert report["kept_since_proposal"] == [second]


def test_disposal_from_a_deep_chunk_repacks_it(small_vault: Vault) -> None:
    ids = archive(small_vault, [build_message(subject=f"chunked {n}", date=OLD if n < 3
                                              else RECENT) for n in range(6)])
    tiers.run_job(small_vault, tiers.create_job(small_vault, ids, "deep", "", "admin").id)
    retention.set_default(small_vault, "1y", "date", "admin")
    run = disposition.dispose(small_vault, "admin")
    assert run.disposed == 3
    report = json.loads(Path(run.report).read_text())
    assert report["compaction"]["chunks_repacked"] == 1
    check = verify(small_vault, "admin")
    assert check.ok, check.problems
    assert small_vault.index.count(parse("subject:chunked")) == 3


def test_command_line(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    mbox = tmp_path / "in.mbox"
    write_mbox(mbox, [build_message(subject="old one", date=OLD, sender="x@corp.example"),
                      build_message(subject="new one", date=RECENT)])
    assert invoke("import", mbox, "--vault", vault).exit_code == 0
    assert invoke("retention", "default", "--period", "1y", "--vault", vault).exit_code == 0
    added = invoke("retention", "add", "corp", "--match", "domain", "--value", "corp.example",
                   "--period", "10y", "--vault", vault, "--json")
    assert added.json()["days"] == 3650
    placed = invoke("hold", "place", "h", "--query", "subject:new", "--reason", "case",
                    "--owner", "legal", "--vault", vault, "--json")
    assert placed.json()["messages"] == 1
    assert invoke("retention", "remove", "corp", "--vault", vault).exit_code == 0
    plan = invoke("dispose", "--dry-run", "--vault", vault, "--json").json()
    assert [m["sha256"] for m in plan["messages"]] and plan["held_back"] == 0
    done = invoke("dispose", "--vault", vault, "--json").json()
    assert (done["state"], done["disposed"]) == ("executed", 1)
    assert [r["id"] for r in invoke("dispose", "--runs", "--vault", vault, "--json").json()] == [
        done["id"]]
    assert len(search_json(vault, "")) == 1


def test_index_documents_go_even_when_another_process_holds_the_index(
        small_vault: Vault) -> None:
    archive(small_vault, [build_message(subject="ephemeral", date=OLD)])
    retention.set_default(small_vault, "1y", "date", "admin")
    small_vault.index.close()
    with Vault.open(small_vault.path) as other:
        other.index.writer()
        assert disposition.dispose(small_vault, "admin").disposed == 1
        assert small_vault.index.count(parse("subject:ephemeral")) == 1
    assert indexing.heal(small_vault) == 0
    assert small_vault.index.count(parse("subject:ephemeral")) == 0
    assert verify(small_vault, "admin").ok


def test_hold_operator_finds_exactly_what_the_hold_covers(small_vault: Vault) -> None:
    held_old, _held_new, _other = archive(small_vault, [
        build_message(subject="inside", date=OLD, to=("bob@example.org",)),
        build_message(subject="later", date=OLD + timedelta(days=400), to=("bob@example.org",)),
        build_message(subject="unrelated", date=OLD, to=("carol@example.org",)),
    ])
    hold = holds.place(small_vault, "Matter-9", custodian="bob@example.org", query=None,
                       date_from=OLD - timedelta(days=5), date_to=OLD + timedelta(days=5),
                       reason="subpoena", owner="legal", actor="admin")
    assert holds.held_by(small_vault, hold) == {held_old}
    auditor = local_operator("t")
    assert {row.id for row in finding.search(small_vault, auditor, "hold:matter-9").rows} \
        == {held_old}
    assert finding.count(small_vault, auditor, "-hold:Matter-9") == 2
    assert finding.count(small_vault, auditor, "hold:matter-9 OR subject:later") == 2
    with pytest.raises(QueryError, match="no active legal hold named 'nope'"):
        finding.count(small_vault, auditor, "hold:nope")
    holds.release(small_vault, "Matter-9", "admin")
    with pytest.raises(QueryError):
        finding.count(small_vault, auditor, "hold:matter-9")
