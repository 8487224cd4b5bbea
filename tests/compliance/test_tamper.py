"""Tampering with the Enron vault behind mailvault's back: each change is reported by
``verify`` or ``audit verify``, and several changes are each reported, not just the first."""

from __future__ import annotations

import os
from pathlib import Path

from mailvault.compliance import retention, tiers
from mailvault.compliance.verify import verify
from mailvault.vault import Vault
from tests.support import catalog_sql, run


def sql(path: Path, statement: str, *args: object) -> None:
    catalog_sql(path, statement, *args)


def location(path: Path, message_id: int) -> tuple[Path, int, int]:
    """(volume file, offset, length) of a message's record."""
    [(volume, offset, length)] = catalog_sql(
        path, 'SELECT volume_id, "offset", length FROM messages WHERE id = ?', message_id)
    [(folder,)] = catalog_sql(path, "SELECT folder FROM volumes WHERE id = ?", volume)
    return Path(folder) / f"{volume:08d}.vol", offset, length


def flip_byte(file: Path, at: int) -> None:
    os.chmod(file, 0o640)
    with open(file, "r+b") as handle:
        handle.seek(at)
        value = handle.read(1)[0]
        handle.seek(at)
        handle.write(bytes([value ^ 0x40]))


def problems(path: Path) -> list[str]:
    with Vault.open(path) as vault:
        return verify(vault, "test").problems


def test_untouched_vault_verifies(enron_path: Path) -> None:
    assert problems(enron_path) == []
    result = run("verify", "--vault", enron_path)
    assert result.returncode == 0, result.stdout.decode()


def test_flipped_byte_in_a_volume(enron_path: Path) -> None:
    file, offset, length = location(enron_path, 42)
    flip_byte(file, offset + length - 20)
    found = problems(enron_path)
    assert len(found) == 1
    assert found[0].startswith("message 42 ") and "altered" in found[0]
    result = run("verify", "--vault", enron_path)
    assert result.returncode == 1 and b"message 42 " in result.stdout


def test_flipped_byte_in_a_deep_chunk(enron_path: Path) -> None:
    with Vault.open(enron_path) as vault:
        tiers.run_job(vault, tiers.start_move(vault, "", "deep", "test").id)
    file, offset, length = location(enron_path, 7)
    flip_byte(file, offset + length // 2)
    found = problems(enron_path)
    # Every message of the damaged chunk is reported, each by id.
    assert len(found) > 1 and all("altered" in p for p in found)
    assert any(p.startswith("message 7 ") for p in found)


def test_truncated_volume(enron_path: Path) -> None:
    file, _, _ = location(enron_path, 1)
    size = file.stat().st_size
    os.chmod(file, 0o640)
    os.truncate(file, size - 5000)
    found = problems(enron_path)
    assert any("was truncated" in p for p in found)
    assert sum("truncated" in p for p in found) > 1, "each lost message is named too"


def test_edited_catalog_row(enron_path: Path) -> None:
    sql(enron_path, "UPDATE messages SET subject = 'nothing to see' WHERE id = 100")
    sql(enron_path, "UPDATE messages SET date = date - 86400 * 400 WHERE id = 200")
    found = problems(enron_path)
    assert any(p.startswith("the catalog row of message 100 ") and "subject" in p
               for p in found)
    assert any(p.startswith("the catalog row of message 200 ") and "date" in p for p in found)


def test_catalog_pointing_at_another_message(enron_path: Path) -> None:
    [other] = catalog_sql(enron_path,
                          'SELECT volume_id, "offset", length FROM messages WHERE id = 11')
    sql(enron_path, 'UPDATE messages SET volume_id = ?, "offset" = ?, length = ? WHERE id = 10',
        *other)
    found = problems(enron_path)
    assert any(p.startswith("message 10 ") and "another blob" in p for p in found)


def test_edited_retain_until(enron_path: Path) -> None:
    with Vault.open(enron_path) as vault:
        retention.set_default(vault, "7y", "date", "admin")
    sql(enron_path, "UPDATE retention SET retain_until = 0 WHERE message_id = 5")
    found = problems(enron_path)
    assert any(p.startswith("the retain-until date of message 5 ") for p in found)


def test_deleted_and_edited_audit_rows(enron_path: Path) -> None:
    with Vault.open(enron_path) as vault:
        for n in range(4):
            retention.set_default(vault, f"{n + 5}y", "date", "admin")
    sql(enron_path, "DELETE FROM audit_log WHERE seq = 2")
    sql(enron_path, "UPDATE audit_log SET detail = '{\"days\":1}' WHERE seq = 4")
    result = run("audit", "verify", "--vault", enron_path)
    assert result.returncode == 1
    out = result.stdout.decode()
    assert "audit entries 2 to 2 are missing" in out
    assert "audit entry 4 was altered" in out
    assert any("audit entry 4 was altered" in p for p in problems(enron_path))


def test_several_changes_each_reported(enron_path: Path) -> None:
    file, offset, length = location(enron_path, 42)
    flip_byte(file, offset + length - 20)
    sql(enron_path, "UPDATE messages SET subject = 'x' WHERE id = 100")
    sql(enron_path, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 1")
    last, _, _ = location(enron_path, 3034)
    os.chmod(last, 0o640)
    os.truncate(last, last.stat().st_size - 100)
    found = problems(enron_path)
    assert any(p.startswith("message 42 ") for p in found)
    assert any(p.startswith("the catalog row of message 100 ") for p in found)
    assert any(p.startswith("audit entry 1 ") for p in found)
    assert any("was truncated" in p for p in found)
    assert any(p.startswith("message 3034 ") for p in found)
