"""An insider with write access to the catalog (a SQL shell on catalog.sqlite, or on the
PostgreSQL database) but not to the keyring: each of their moves is named by ``verify`` or
``audit verify`` afterwards.

The insider's edits are plain SQL statements (``tests.support.catalog_shell``, on either
database); what is checked is what the real command line says after them."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailvault.compliance import disposition, retention
from mailvault.compliance.verify import verify
from mailvault.config import load_settings
from mailvault.errors import ConfigError
from mailvault.store import audit
from mailvault.vault import Vault
from tests.compliance.conftest import archive
from tests.support import (
    CatalogShell,
    build_message,
    catalog_shell,
    catalog_sql,
    count,
    invoke,
    run,
    write_mbox,
    write_settings,
)

OLD = datetime.now(UTC) - timedelta(days=3 * 365)
RECENT = datetime.now(UTC) - timedelta(days=10)
GENESIS = "0" * 64


def sha_of(path: Path, message_id: int) -> str:
    [(digest,)] = catalog_sql(path, "SELECT sha256 FROM messages WHERE id = ?", message_id)
    return str(digest)


def delete_messages(path: Path, ids: list[int]) -> None:
    """Delete message rows as an insider would, with the rows that refer to them (which
    PostgreSQL's foreign keys require first; SQLite's shell does not check them)."""
    marks = ", ".join("?" * len(ids))
    with catalog_shell(path) as db:
        for table in ("message_parts", "addresses", "attachments", "provenance"):
            db.execute(f"DELETE FROM {table} WHERE message_id IN ({marks})", *ids)
        db.execute(f"DELETE FROM messages WHERE id IN ({marks})", *ids)


def public_hash(prev: str, seq: int, at: int, actor: str, action: str, detail: str) -> str:
    """The chain hash anyone can compute: SHA-256 over the entry's fields (the algorithm of
    the entries written before a vault had a chain key)."""
    body = json.dumps([prev, seq, at, actor, action, detail], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def rehash_publicly(db: CatalogShell) -> None:
    """Recompute every entry's prev_hash and hash with the public algorithm."""
    prev = GENESIS
    rows = db.execute("SELECT seq, at, actor, action, detail FROM audit_log ORDER BY seq")
    for seq, at, actor, action, detail in rows:
        digest = public_hash(prev, seq, at, actor, action, detail)
        db.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?",
                   prev, digest, seq)
        prev = digest


def cli_json(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, Any]:
    result = invoke(*args, "--json", env=env)
    return result.exit_code, result.json()


@pytest.fixture
def mail_path(tmp_path: Path) -> Path:
    """A vault made with the command line, holding a few built messages."""
    path = tmp_path / "vault"
    assert invoke("init", "--vault", path).exit_code == 0
    write_mbox(tmp_path / "in.mbox", [build_message(subject=f"note {n}") for n in range(5)])
    assert invoke("import", tmp_path / "in.mbox", "--vault", path).exit_code == 0
    return path


def audit_entries(path: Path) -> list[dict[str, Any]]:
    result = invoke("audit", "log", "--vault", path, "--json")
    assert result.exit_code == 0
    entries: list[dict[str, Any]] = result.json()
    return entries


# -- finding 7: message rows deleted behind the archive's back ------------------------------


def test_deleted_message_rows_are_named_even_after_reindex(enron_path: Path) -> None:
    gone = [sha_of(enron_path, 10), sha_of(enron_path, 2000)]
    delete_messages(enron_path, [10, 2000])
    reindexed = run("reindex", "--vault", enron_path)
    assert reindexed.returncode == 0, reindexed.stderr
    assert count(enron_path, "") == 3032
    checked = run("verify", "--vault", enron_path, "--json")
    assert checked.returncode == 1
    report = json.loads(checked.stdout)
    for digest in gone:
        assert [p for p in report["problems"] if digest in p and "no disposition" in p], \
            report["problems"]
    status, audited = cli_json("audit", "verify", "--vault", enron_path)
    assert status == 1
    assert all(any(digest in p for p in audited["problems"]) for digest in gone)
    reindex_entries = [e for e in audit_entries(enron_path) if e["action"] == "reindex"]
    assert [e["detail"]["messages"] for e in reindex_entries] == [3032]


def test_each_ingest_entry_commits_to_its_hashes(small_vault: Vault) -> None:
    raws = [build_message(subject=f"batch {n}") for n in range(3)]
    archive(small_vault, raws)
    with small_vault.engine.connect() as conn:
        entries = [e for e in audit.entries(conn) if e.action == "ingest"]
    assert len(entries) == 1
    detail = entries[0].detail
    hashes = sorted(hashlib.sha256(raw).hexdigest() for raw in raws)
    assert detail["sha256"] == hashes
    assert detail["sha256_digest"] == hashlib.sha256(
        b"".join(bytes.fromhex(h) for h in hashes)).hexdigest()


def test_disposed_and_rearchived_messages_are_not_reported(small_vault: Vault) -> None:
    expired_raw = build_message(subject="expired", date=OLD)
    expired, kept = archive(small_vault, [expired_raw, build_message(subject="kept",
                                                                     date=RECENT)])
    retention.set_default(small_vault, "1y", "date", "admin")
    assert disposition.dispose(small_vault, "admin").disposed == 1
    assert verify(small_vault, "admin").ok
    retention.set_default(small_vault, "10y", "date", "admin")
    (again,) = archive(small_vault, [expired_raw])
    assert again != expired
    assert verify(small_vault, "admin").ok
    kept_sha = sha_of(small_vault.path, kept)
    delete_messages(small_vault.path, [kept])
    found = [p for p in verify(small_vault, "admin").problems if "no disposition" in p]
    assert len(found) == 1 and kept_sha in found[0]


# -- finding 8: the chain itself rewritten or cut short -------------------------------------


def test_a_chain_rehashed_with_the_public_algorithm_is_detected(mail_path: Path) -> None:
    assert invoke("audit", "verify", "--vault", mail_path).exit_code == 0
    with catalog_shell(mail_path) as db:
        db.execute("UPDATE audit_log SET detail = replace(detail, '\"archived\":5', "
                   "'\"archived\":4') WHERE action = 'ingest'")
        rehash_publicly(db)
    result = run("audit", "verify", "--vault", mail_path)
    assert result.returncode == 1
    assert b"was altered after it was written" in result.stdout, result.stdout
    status, report = cli_json("verify", "--vault", mail_path)
    assert status == 1 and any("altered" in p for p in report["problems"])


def test_deleting_the_last_entries_is_detected(mail_path: Path) -> None:
    for word in ("alpha", "beta", "gamma"):
        assert invoke("search", word, "--vault", mail_path).exit_code == 0
    # Entries are numbered from the newest one held, so the next entry shows no gap either.
    catalog_sql(mail_path,
                "DELETE FROM audit_log WHERE seq > (SELECT max(seq) - 2 FROM audit_log)")
    result = run("audit", "verify", "--vault", mail_path)
    assert result.returncode == 1
    assert b"deleted" in result.stdout, result.stdout
    status, report = cli_json("verify", "--vault", mail_path)
    assert status == 1 and any("deleted" in p for p in report["problems"])


def test_audit_verify_against_a_head_kept_elsewhere(mail_path: Path) -> None:
    # What an insider can restore: the vault's own head file as it was at some point.
    kept_file = mail_path.parent / "head-file-then"
    shutil.copy(mail_path / "audit-head.json", kept_file)
    [(then,)] = catalog_sql(mail_path, "SELECT max(seq) FROM audit_log")
    for word in ("alpha", "beta"):
        assert invoke("search", word, "--vault", mail_path).exit_code == 0
    seq, digest = invoke("audit", "head", "--vault", mail_path).text.split()
    good = invoke("audit", "verify", "--head", f"{seq}:{digest}", "--vault", mail_path)
    assert good.exit_code == 0, good.text
    # The insider cuts the log back to where it was and restores the head file of then:
    # the vault alone cannot tell, the head kept elsewhere can.
    catalog_sql(mail_path, "DELETE FROM audit_log WHERE seq > ?", then)
    shutil.copy(kept_file, mail_path / "audit-head.json")
    assert invoke("audit", "verify", "--vault", mail_path).exit_code == 0
    cut = run("audit", "verify", "--head", f"{seq} {digest}", "--vault", mail_path)
    assert cut.returncode == 1
    assert f"ends at entry {then}".encode() in cut.stdout, cut.stdout
    wrong = invoke("audit", "verify", "--head", f"{then}:{'ab' * 32}", "--vault", mail_path)
    assert wrong.exit_code == 1 and "rewritten" in wrong.text
    bad = run("audit", "verify", "--head", "yesterday", "--vault", mail_path)
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1


def test_a_forged_or_missing_head_file_is_detected(mail_path: Path) -> None:
    head_file = mail_path / "audit-head.json"
    record = json.loads(head_file.read_text())
    record["seq"] -= 1
    head_file.write_text(json.dumps(record))
    forged = invoke("audit", "verify", "--vault", mail_path)
    assert forged.exit_code == 1 and "head file" in forged.text and "altered" in forged.text
    head_file.unlink()
    result = run("audit", "verify", "--vault", mail_path)
    assert result.returncode == 1 and b"head file" in result.stdout and b"missing" in result.stdout


def test_a_head_file_left_half_written_by_a_kill_is_removed(mail_path: Path) -> None:
    # A writer killed between creating its temporary head file and renaming it.
    left = mail_path / ".audit-head.json.4242.tmp"
    left.write_text('{"seq": 1')
    result = invoke("audit", "verify", "--vault", mail_path)
    assert result.exit_code == 0, result.text
    assert not left.exists()


def test_entries_from_before_the_chain_key_verify_and_stay_protected(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    assert invoke("init", "--vault", path).exit_code == 0
    # Make it a vault of an older mailvault: public-hash entries, no chain key, no head file.
    with catalog_shell(path) as db:
        db.execute("DELETE FROM audit_log")
        for n in range(1, 4):
            db.execute("INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, "
                       "hash) VALUES (?, ?, 'old', 'search', ?, '', '')",
                       n, 1_600_000_000 + n, json.dumps({"query": f"q{n}"}))
        rehash_publicly(db)
    (path / "keys" / "audit-chain.key").unlink(missing_ok=True)
    (path / "audit-head.json").unlink(missing_ok=True)
    intact = invoke("audit", "verify", "--vault", path)
    assert intact.exit_code == 0, intact.text
    actions = [e["action"] for e in audit_entries(path)]
    assert actions[:4] == ["search", "search", "search", "audit-key"]
    # The old entries are still covered: rewriting them breaks the key-introduction entry.
    with catalog_shell(path) as db:
        db.execute("UPDATE audit_log SET detail = '{\"query\":\"nothing\"}' WHERE seq = 2")
        prev = GENESIS
        for seq, at, actor, action, detail in db.execute(
                "SELECT seq, at, actor, action, detail FROM audit_log WHERE seq < 4 "
                "ORDER BY seq"):
            digest = public_hash(prev, seq, at, actor, action, detail)
            db.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?",
                       prev, digest, seq)
            prev = digest
    result = run("audit", "verify", "--vault", path)
    assert result.returncode == 1
    assert b"audit entry 4 does not follow" in result.stdout, result.stdout


# -- finding 9: settings that weaken compliance ----------------------------------------------


def settings_entries(path: Path) -> list[dict[str, Any]]:
    return [e["detail"] for e in audit_entries(path) if e["action"] == "settings"]


def test_settings_changes_are_audited(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    assert invoke("init", "--vault", path).exit_code == 0
    write_settings(
        path, "[retention]\nfour_eyes = true\ndefault_days = 3650\n\n"
        "[smtp]\nallow = [\"10.0.0.0/8\"]\n")
    assert invoke("count", "", "--vault", path).exit_code == 0
    before = len(settings_entries(path))
    write_settings(
        path, "[retention]\nfour_eyes = false\ndefault_days = 30\n\n"
        "[smtp]\nallow = [\"0.0.0.0/0\"]\n\n[milter]\non_failure = \"accept\"\n")
    assert run("count", "", "--vault", path).returncode == 0
    entries = settings_entries(path)
    assert len(entries) == before + 1
    assert entries[-1]["changed"] == {
        "retention.four_eyes": [True, False],
        "retention.default_days": [3650, 30],
        "smtp.allow": [["10.0.0.0/8"], ["0.0.0.0/0"]],
        "milter.on_failure": ["tempfail", "accept"],
    }
    assert len(entries[-1]["digest"]) == 64
    # Unchanged settings add nothing.
    assert invoke("count", "", "--vault", path).exit_code == 0
    assert len(settings_entries(path)) == before + 1


def test_the_environment_cannot_turn_four_eyes_off(enron_path: Path) -> None:
    with (enron_path / "mailvault.toml").open("a", encoding="utf-8") as toml:
        toml.write("\n[retention]\nfour_eyes = true\n")
    assert invoke("retention", "default", "--period", "1d", "--vault", enron_path,
                  env={"MAILVAULT_ACTOR": "mallory"}).exit_code == 0
    result = run("dispose", "--vault", enron_path,
                 env={"MAILVAULT_ACTOR": "mallory", "MAILVAULT_RETENTION_FOUR_EYES": "false"})
    assert result.returncode == 1
    assert result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert "MAILVAULT_RETENTION_FOUR_EYES" in line and "Traceback" not in line
    assert count(enron_path, "") == 3034


def test_environment_overrides_may_strengthen_but_not_weaken(tmp_path: Path) -> None:
    (tmp_path / "mailvault.toml").write_text(
        "[retention]\ndefault_days = 3650\n\n"
        "[smtp]\nallow = [\"10.0.0.0/8\"]\nauth = \"optional\"\n"
        "recipients = [\"journal@example.org\", \"@corp.example\"]\n", encoding="utf-8")
    weaker = {"MAILVAULT_RETENTION_DEFAULT_DAYS": "30",
              "MAILVAULT_RETENTION_DEFAULT_FROM": "archived",
              "MAILVAULT_SMTP_ALLOW": "10.0.0.0/8,192.168.0.0/16",
              "MAILVAULT_SMTP_RECIPIENTS": "journal@example.org,@evil.example",
              "MAILVAULT_SMTP_AUTH": "off",
              "MAILVAULT_MILTER_ON_FAILURE": "accept"}
    for name, value in weaker.items():
        with pytest.raises(ConfigError, match=name):
            load_settings(tmp_path, {name: value})
    stronger = {"MAILVAULT_RETENTION_DEFAULT_DAYS": "4000",
                "MAILVAULT_RETENTION_FOUR_EYES": "true",
                "MAILVAULT_SMTP_ALLOW": "10.1.0.0/16",
                "MAILVAULT_SMTP_RECIPIENTS": "journal@example.org",
                "MAILVAULT_SMTP_AUTH": "required",
                "MAILVAULT_SMTP_REQUIRE_TLS": "true"}
    settings = load_settings(tmp_path, stronger)
    assert (settings.retention.default_days, settings.smtp.allow, settings.smtp.auth) == (
        4000, ["10.1.0.0/16"], "required")
    # Settings that are not about compliance keep overriding freely.
    assert load_settings(tmp_path, {"MAILVAULT_INGEST_MAX_MESSAGE_MB": "1"}
                         ).ingest.max_message_mb == 1


def test_a_run_proposed_under_four_eyes_keeps_needing_a_second_person(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    assert invoke("init", "--vault", path).exit_code == 0
    write_mbox(tmp_path / "old.mbox", [build_message(subject="old", date=OLD)])
    assert invoke("import", tmp_path / "old.mbox", "--vault", path).exit_code == 0
    write_settings(path, "[retention]\nfour_eyes = true\n")
    alice = {"MAILVAULT_ACTOR": "alice"}
    assert invoke("retention", "default", "--period", "1y", "--vault", path,
                  env=alice).exit_code == 0
    proposed = invoke("dispose", "--propose", "--vault", path, "--json", env=alice).json()
    # Alice turns the rule off in mailvault.toml (audited) and approves her own run.
    write_settings(path, "[retention]\nfour_eyes = false\n")
    result = run("dispose", "--approve", str(proposed["id"]), "--vault", path, env=alice)
    assert result.returncode == 1 and b"four-eyes" in result.stderr, result.stderr
    assert count(path, "") == 1
    done = invoke("dispose", "--approve", str(proposed["id"]), "--vault", path, "--json",
                  env={"MAILVAULT_ACTOR": "bob"})
    assert done.json()["disposed"] == 1
