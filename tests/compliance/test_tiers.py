"""Tier moves and activation on the Enron mailbox: bytes exact from every tier, search as each
tier promises, shared parts in the warmest tier, compaction, import straight into a tier."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import func, select

from mailvault.compliance import compaction, inventory, tiers
from mailvault.compliance.verify import verify
from mailvault.search.query import parse
from mailvault.store import catalog, schema
from mailvault.store.blobs import KIND_CHUNK, KIND_PART
from mailvault.store.volumes import walk_records
from mailvault.vault import Vault
from tests.compliance.conftest import ENRON_MESSAGES, archive
from tests.support import Attachment, build_message, invoke, run, write_mbox


def read_all(vault: Vault) -> dict[str, bytes]:
    """Every message's bytes by SHA-256, each checked against its hash here too."""
    out = {}
    with vault.engine.connect() as conn:
        for row in catalog.iter_messages(conn):
            raw = vault.read_raw(row)
            assert hashlib.sha256(raw).hexdigest() == row.sha256
            out[row.sha256] = raw
    return out


def tier_counts(vault: Vault) -> dict[str, int]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(schema.messages.c.tier, func.count())
                            .group_by(schema.messages.c.tier)).all()
    return {tier: count for tier, count in rows}


def move(vault: Vault, query: str, target: str) -> tiers.Job:
    job = tiers.start_move(vault, query, target, "test")
    return tiers.run_job(vault, job.id)


def test_bytes_come_back_exact_from_every_tier(enron: Vault) -> None:
    before = read_all(enron)
    assert len(before) == ENRON_MESSAGES
    stored = {"active": inventory.collect(enron).tiers["active"].stored_bytes}
    for target in ("open", "deep"):
        job = move(enron, "", target)
        assert (job.state, job.done, job.total) == ("done", ENRON_MESSAGES, ENRON_MESSAGES)
        assert tier_counts(enron) == {target: ENRON_MESSAGES}
        assert read_all(enron) == before
        stored[target] = inventory.collect(enron).tiers[target].stored_bytes
    assert stored["deep"] < stored["open"] < stored["active"]
    job = tiers.run_job(enron, tiers.start_move(enron, "", "active", "test").id)
    assert job.done == ENRON_MESSAGES
    assert tier_counts(enron) == {"active": ENRON_MESSAGES}
    assert read_all(enron) == before
    assert verify(enron, "test").ok


def test_deep_chunks_hold_many_messages(enron: Vault) -> None:
    move(enron, "", "deep")
    chunks = [header for path in enron.tier_folder("deep").glob("*.vol")
              for _, header in walk_records(path)]
    assert chunks and all(h.kind == KIND_CHUNK for h in chunks)
    assert len(chunks) < ENRON_MESSAGES / 100


def test_search_follows_the_tier(enron: Vault) -> None:
    # "gas" appears in bodies of messages whose subject and addresses never say it.
    body_only = parse("body:gas -subject:gas")
    ids = set(enron.index.ids(body_only))
    assert len(ids) > 50
    some = sorted(ids)[:5]
    with enron.engine.connect() as conn:
        rows = catalog.messages_by_id(conn, some)
    subjects_and_senders = [(r.id, r.from_addr) for r in rows]
    move(enron, "body:gas -subject:gas", "open")
    assert set(enron.index.ids(body_only)) == ids
    move(enron, "tier:open", "deep")
    assert enron.index.count(parse("tier:deep")) == len(ids)
    assert set(enron.index.ids(body_only)) == set()
    for message_id, sender in subjects_and_senders:
        # Metadata stays searchable in Deep: the sender, and the date.
        sender_address = sender.split("<")[-1].rstrip(">").strip()
        assert message_id in set(enron.index.ids(parse(f'from:"{sender_address}"')))
    move(enron, "tier:deep", "active")
    assert set(enron.index.ids(body_only)) == ids
    assert enron.index.count(parse("tier:active")) == ENRON_MESSAGES


def test_deep_keeps_subject_folder_and_attachment_names(small_vault: Vault) -> None:
    raw = build_message(subject="quarterly forecast", body="the secret word is aubergine",
                        attachments=[Attachment("plan.txt", b"x" * 100, "text/plain")])
    (message_id,) = archive(small_vault, [raw], folder="Projects")
    move(small_vault, "", "deep")
    for query in ("subject:forecast", "filename:plan.txt", "folder:Projects",
                  "from:alice@example.org", "after:2021-03-01"):
        assert list(small_vault.index.ids(parse(query))) == [message_id], query
    assert list(small_vault.index.ids(parse("aubergine"))) == []


def test_a_shared_part_lives_in_the_warmest_tier(small_vault: Vault) -> None:
    shared = Attachment("report.bin", bytes(range(256)) * 80)
    raws = [build_message(subject=f"copy {n}", attachments=[shared]) for n in range(2)]
    first, second = archive(small_vault, raws)

    def part_tier() -> str:
        with small_vault.engine.connect() as conn:
            return str(conn.execute(select(schema.parts.c.tier)).scalar_one())

    assert part_tier() == "active"
    tiers.run_job(small_vault, tiers.create_job(small_vault, [first], "deep", "t", "test").id)
    assert part_tier() == "active"
    tiers.run_job(small_vault, tiers.create_job(small_vault, [second], "deep", "t", "test").id)
    assert part_tier() == "deep"
    tiers.run_job(small_vault, tiers.create_job(small_vault, [first], "open", "t", "test").id)
    assert part_tier() == "open"
    assert {hashlib.sha256(r).hexdigest() for r in raws} == set(read_all(small_vault))


def test_compaction_reclaims_what_moves_released(enron: Vault) -> None:
    before = read_all(enron)
    active_bytes = sum(p.stat().st_size for p in enron.tier_folder("active").glob("*.vol"))
    move(enron, "", "deep")
    report = compaction.compact(enron, "test")
    assert report.volumes
    left = sum(p.stat().st_size for p in enron.tier_folder("active").glob("*.vol"))
    assert left < active_bytes / 2
    assert read_all(enron) == before
    assert verify(enron, "test").ok


def test_compaction_keeps_every_live_blob(enron: Vault) -> None:
    before = read_all(enron)
    move(enron, "from:phillip.allen", "deep")
    report = compaction.compact(enron, "test", min_free=0.0)
    assert report.records_copied > 0
    assert read_all(enron) == before
    assert verify(enron, "test").ok


def test_moves_are_audited_and_listed(enron: Vault) -> None:
    job = move(enron, "subject:meeting", "open")
    assert tiers.recent_jobs(enron)[0].id == job.id
    with enron.engine.connect() as conn:
        actions = conn.execute(select(schema.audit_log.c.action)).scalars().all()
    assert "tier-move" in actions and "tier-move-done" in actions


def test_import_straight_into_deep(tmp_path: Path) -> None:
    mbox = tmp_path / "in.mbox"
    write_mbox(mbox, [build_message(subject=f"note {n}") for n in range(5)])
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    result = invoke("import", mbox, "--tier", "deep", "--vault", vault, "--json")
    assert result.exit_code == 0, result.stdout
    with Vault.open(vault) as opened:
        assert tier_counts(opened) == {"deep": 5}
        assert opened.index.count(parse("tier:deep subject:note")) == 5
        assert len(read_all(opened)) == 5


def test_unknown_tier_is_one_clear_error(enron_path: Path) -> None:
    result = run("tier", "move", "", "--to", "glacier", "--vault", enron_path)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        "mailvault: 'glacier' is not a tier (use active, open or deep).")


def test_compaction_leaves_a_volume_another_process_appends_to(small_vault: Vault) -> None:
    archive(small_vault, [build_message(subject="busy")])
    move(small_vault, "", "open")
    (path,) = small_vault.tier_folder("active").glob("*.vol")
    # small_vault still holds its Active volume open for appends: another vault (another
    # process, as far as the lock goes) must leave it alone.
    with Vault.open(small_vault.path) as other:
        report = compaction.compact(other, "test", min_free=0.0, include_open=True)
    assert report.volumes == [] and path.exists()
    report = compaction.compact(small_vault, "test", min_free=0.0, include_open=True)
    assert report.volumes and not path.exists()


def test_two_writers_never_share_a_volume(small_vault: Vault) -> None:
    with Vault.open(small_vault.path) as second:
        first_at = small_vault.blobs.write("active", KIND_PART, b"a" * 32, b"x", 1)
        second_at = second.blobs.write("active", KIND_PART, b"b" * 32, b"y", 1)
        assert first_at.volume != second_at.volume
        second.blobs.sync()
    small_vault.blobs.sync()
