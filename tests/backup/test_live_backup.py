"""A backup taken by the `backup` command while `serve` takes SMTP load, restored: the new
vault holds exactly the messages the catalog held at the snapshot, each readable. Under
MAILVAULT_TEST_CATALOG=postgresql the snapshot is the PostgreSQL one (one REPEATABLE READ
transaction)."""

from __future__ import annotations

import smtplib
import sqlite3
import threading
from pathlib import Path

from mailvault.usecases import backups, finding, monitoring
from mailvault.vault import CATALOG_FILE, Vault
from tests.backup.conftest import ADMIN, READER, catalog_hashes
from tests.capture.conftest import build, message_count, start_serving, wait_until
from tests.support import catalog_sql, run

JOURNAL = "journal@archive.test"


def test_a_backup_under_smtp_load_restores_the_snapshot(
        vault: Vault, tmp_path: Path) -> None:
    vault.settings.smtp.recipients = [JOURNAL]
    running = start_serving(vault)
    stop = threading.Event()
    acknowledged: list[int] = []
    failed: list[BaseException] = []

    def load() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
                number = 0
                while not stop.is_set():
                    client.sendmail("a@example.org", [JOURNAL],
                                    build(f"load {number}", body=f"message {number}\r\n" * 50))
                    acknowledged.append(number)
                    number += 1
        except BaseException as exc:
            failed.append(exc)

    sender = threading.Thread(target=load, daemon=True)
    sender.start()
    try:
        wait_until(lambda: message_count(vault) >= 20, 60, "mail archived under load")
        backup = tmp_path / "backup"
        made = run("backup", "--to", backup, "--vault", vault.path)
        assert made.returncode == 0, made.stderr
        at_snapshot = catalog_hashes(backup / "catalog.sqlite")
        # The load went on past the snapshot.
        wait_until(lambda: message_count(vault) > len(at_snapshot) + 10, 60,
                   "more mail after the backup")
    finally:
        stop.set()
        sender.join(60)
        running.stop()
    assert failed == []
    assert len(at_snapshot) >= 20

    restored = backups.restore(ADMIN, backup, tmp_path / "restored",
                               keys_from=vault.path / "keys")

    assert catalog_hashes(tmp_path / "restored" / CATALOG_FILE) == at_snapshot
    assert restored.messages == len(at_snapshot)
    # Exactly a prefix of what the running vault archived: every message up to the
    # snapshot's newest id, none after it.
    with sqlite3.connect(f"file:{backup / 'catalog.sqlite'}?mode=ro", uri=True) as db:
        newest = db.execute("SELECT max(id) FROM messages").fetchone()[0]
    # The running vault's catalog, SQLite or PostgreSQL (MAILVAULT_TEST_CATALOG).
    prefix = {row[0] for row in catalog_sql(vault.path, "SELECT sha256 FROM messages "
                                            "WHERE id <= ?", newest)}
    assert prefix == at_snapshot
    with Vault.open(tmp_path / "restored") as again:
        checked = monitoring.verify(again, ADMIN)
        assert checked.ok, checked.problems
        assert checked.messages_checked == len(at_snapshot)
        assert finding.count(again, READER, "subject:load") == len(at_snapshot)
