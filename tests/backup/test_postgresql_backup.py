"""Backups of a vault whose catalog is in PostgreSQL (the real server: tests/postgres.py).

The catalog is read in one REPEATABLE READ transaction: mail archived while the copy runs
(between two of its chunks) is not in the backup, and the backup's audit head is the one the
snapshot saw. The backup restores into a new SQLite vault and into a new PostgreSQL database,
each then byte-exact, `verify` and `audit verify` clean. A database connection lost in the
middle of the snapshot is one sentence and leaves no backup that passes for complete; the
next run makes one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, Table, create_engine

from mailvault.backup import manifest
from mailvault.config import load_settings
from mailvault.errors import StoreError
from mailvault.store import audit, catalog_copy
from mailvault.usecases import backups
from mailvault.vault import CATALOG_FILE, Vault
from tests import postgres
from tests.backup.conftest import ADMIN, assert_restored, by_hash, catalog_hashes, messages
from tests.compliance.conftest import archive
from tests.postgresql.conftest import Catalog
from tests.support import invoke, run


def _pg_vault(path: Path, pg: Catalog) -> Vault:
    return Vault.create(path, catalog_url=pg.url, catalog_password_file=str(pg.password_file))


def test_a_postgresql_catalog_is_one_snapshot_and_restores_into_sqlite_and_postgresql(
        pg_catalog: Catalog, postgres_cluster: postgres.Cluster, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = messages(12, "before")
    during = messages(4, "during")
    # Small chunks: the copy reads each table in several statements of one transaction.
    monkeypatch.setattr(catalog_copy, "CHUNK_ROWS", 10)
    archived_during: list[int] = []

    def archive_meanwhile(name: str, _amount: int) -> None:
        if name.startswith(f"{manifest.CATALOG}:") and not archived_during:
            archived_during.extend(archive(vault, during))

    with _pg_vault(tmp_path / "vault", pg_catalog) as vault:
        archive(vault, before)
        with vault.engine.connect() as conn:
            head_before = audit.head(conn)
        report = backups.back_up(vault, ADMIN, tmp_path / "backup", progress=archive_meanwhile)
        assert len(archived_during) == len(during)
        with vault.engine.connect() as conn:
            assert audit.head(conn)[0] > head_before[0]

    assert report.catalog == "postgresql"
    assert report.messages == len(before)
    assert (report.audit_seq, report.audit_hash) == head_before
    assert catalog_hashes(tmp_path / "backup" / manifest.CATALOG) == set(by_hash(before))
    checked = backups.check_backup(ADMIN, tmp_path / "backup")
    assert checked.ok, checked.problems
    assert manifest.read(tmp_path / "backup").catalog == "postgresql"

    # Into a new SQLite vault (the default): it never names the old database.
    backups.restore(ADMIN, tmp_path / "backup", tmp_path / "into-sqlite",
                    keys_from=tmp_path / "vault" / "keys")
    assert (tmp_path / "into-sqlite" / CATALOG_FILE).exists()
    assert load_settings(tmp_path / "into-sqlite").catalog.url == ""
    assert_restored(tmp_path / "into-sqlite", by_hash(before), report.audit_seq)
    assert invoke("verify", "--vault", tmp_path / "into-sqlite").exit_code == 0
    assert invoke("audit", "verify", "--vault", tmp_path / "into-sqlite").exit_code == 0

    # Into a new PostgreSQL database, given as init --from-backup --catalog gives it.
    with postgres_cluster.database() as name:
        url = postgres_cluster.url(name)
        restored = invoke("init", "--from-backup", tmp_path / "backup", "--keys",
                          tmp_path / "vault" / "keys", "--vault", tmp_path / "into-pg",
                          "--catalog", url, "--catalog-password-file",
                          pg_catalog.password_file)
        assert restored.exit_code == 0, restored.stdout
        assert not (tmp_path / "into-pg" / CATALOG_FILE).exists()
        assert load_settings(tmp_path / "into-pg").catalog.url == url
        assert_restored(tmp_path / "into-pg", by_hash(before), report.audit_seq)
        with Vault.open(tmp_path / "into-pg") as again:
            assert again.engine.dialect.name == "postgresql"
            archive(again, messages(1, "after"))  # new ids follow the copied ones


def test_a_connection_lost_mid_snapshot_is_one_sentence_and_the_next_run_completes(
        pg_catalog: Catalog, postgres_cluster: postgres.Cluster, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_copy, "CHUNK_ROWS", 10)
    cut: list[bool] = []

    def end_the_snapshot(name: str, _amount: int) -> None:
        # The snapshot's connection waits between two chunks, inside its transaction.
        if name.startswith(f"{manifest.CATALOG}:") and not cut:
            cut.append(True)
            with postgres_cluster.connect(pg_catalog.name) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                              "AND state = 'idle in transaction'")

    with _pg_vault(tmp_path / "vault", pg_catalog) as vault:
        archive(vault, messages(8, "kept"))
        with pytest.raises(StoreError) as failed:
            backups.back_up(vault, ADMIN, tmp_path / "backup", progress=end_the_snapshot)
        sentence = str(failed.value)
        assert "could not be read" in sentence and "run the backup again" in sentence
        assert "\n" not in sentence
        assert not (tmp_path / "backup" / manifest.MANIFEST_FILE).exists()
        assert not backups.check_backup(ADMIN, tmp_path / "backup").ok

        report = backups.back_up(vault, ADMIN, tmp_path / "backup")
        assert backups.check_backup(ADMIN, tmp_path / "backup").ok
        with vault.engine.connect() as conn:
            actions = [e.action for e in audit.entries(conn)]
            failed_entry = audit.last(conn, "backup-failed")
        # Only the backup that was made is in the log as one; the other says why it failed.
        assert actions.count("backup") == 1 and actions.count("backup-failed") == 1
        assert failed_entry is not None and failed_entry.detail["reason"] == sentence
    assert report.messages == 8


def test_a_refused_password_is_one_sentence_and_writes_nothing(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    _pg_vault(tmp_path / "vault", pg_catalog).close()
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    wrong.chmod(0o600)
    refused = run("backup", "--to", tmp_path / "backup", "--vault", tmp_path / "vault",
                  env={"MAILVAULT_CATALOG_PASSWORD_FILE": str(wrong)})
    assert refused.returncode == 1
    said = refused.stderr.decode().strip()
    assert len(said.splitlines()) == 1 and "password authentication failed" in said, said
    assert not (tmp_path / "backup").exists()


def test_a_restore_into_postgresql_cut_short_goes_on_where_it_stopped(
        pg_catalog: Catalog, postgres_cluster: postgres.Cluster, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    raws = messages(10, "resumed")
    with Vault.create(tmp_path / "vault") as vault:
        archive(vault, raws)
        report = backups.back_up(vault, ADMIN, tmp_path / "backup")
    monkeypatch.setattr(catalog_copy, "CHUNK_ROWS", 5)
    upsert = catalog_copy.database.upsert
    calls: list[str] = []

    def cut_at_the_fourth_chunk(conn: Connection, table: Table, keys: list[str],
                                values: dict[str, object]) -> None:
        calls.append(table.name)
        if calls.count(catalog_copy.PROGRESS_TABLE) == 5:
            raise RuntimeError("cut")
        upsert(conn, table, keys, values)

    with monkeypatch.context() as patch:
        patch.setattr(catalog_copy.database, "upsert", cut_at_the_fourth_chunk)
        with pytest.raises(RuntimeError, match="cut"):
            backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored",
                            keys_from=tmp_path / "vault" / "keys", catalog_url=pg_catalog.url,
                            catalog_password_file=str(pg_catalog.password_file))
    assert not (tmp_path / "restored").exists()
    engine = create_engine(pg_catalog.url.replace("postgresql://", "postgresql+psycopg://"),
                           connect_args={"password": postgres_cluster.password})
    try:
        assert catalog_copy.in_progress(engine) is not None
    finally:
        engine.dispose()

    backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored",
                    keys_from=tmp_path / "vault" / "keys", catalog_url=pg_catalog.url,
                    catalog_password_file=str(pg_catalog.password_file))
    with Vault.open(tmp_path / "restored") as again:
        counts = catalog_copy.row_counts(again.engine)
    source = create_engine(f"sqlite:///{tmp_path / 'backup' / manifest.CATALOG}")
    try:
        held = catalog_copy.row_counts(source)
    finally:
        source.dispose()
    # Nothing copied twice: the restore's own entry is the only row more.
    assert counts == {**held, "audit_log": held["audit_log"] + 1}
    assert_restored(tmp_path / "restored", by_hash(raws), report.audit_seq)
