"""Backup, backup verify and restore through the use cases (and the commands), on small vaults
of built messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.backup import manifest
from mailvault.errors import InputError, PermissionDenied
from mailvault.store import audit
from mailvault.usecases import auditing, backups, finding, monitoring
from mailvault.vault import CATALOG_FILE, Vault
from tests.backup.conftest import ADMIN, READER, catalog_hashes, loose_modes, messages
from tests.compliance.conftest import archive
from tests.support import invoke


def test_restore_holds_the_backup_and_the_chain_goes_on(vault: Vault, tmp_path: Path) -> None:
    archive(vault, messages(5, "before"))
    report = backups.back_up(vault, ADMIN, tmp_path / "backup", include_keys=True)
    archive(vault, messages(2, "after"))
    assert report.messages == 5
    assert backups.check_backup(ADMIN, tmp_path / "backup").ok

    restored = backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored")

    assert restored.messages == 5
    assert (catalog_hashes(tmp_path / "restored" / CATALOG_FILE)
            == catalog_hashes(tmp_path / "backup" / manifest.CATALOG))
    with Vault.open(tmp_path / "restored") as again:
        assert monitoring.verify(again, READER).ok
        assert finding.count(again, READER, "") == 5
        assert finding.count(again, READER, "subject:after") == 0
        assert auditing.verify_chain(again, READER).ok
        with again.engine.connect() as conn:
            log = list(audit.entries(conn))
        after_backup = log[report.audit_seq]
        assert after_backup.action == "restore"
        assert after_backup.prev_hash == report.audit_hash
        assert after_backup.actor == ADMIN.name
    # The original vault recorded the backup, after the snapshot's last entry.
    with vault.engine.connect() as conn:
        entry = audit.last(conn, "backup")
    assert entry is not None and entry.seq > report.audit_seq
    assert loose_modes(tmp_path / "backup") == []
    assert loose_modes(tmp_path / "restored") == []


def test_a_second_backup_copies_only_what_is_new(vault_path: Path, tmp_path: Path) -> None:
    Vault.create(vault_path).close()
    (vault_path / "mailvault.toml").write_text("[store]\nvolume_max_mb = 1\n")
    with Vault.open(vault_path) as vault:
        archive(vault, messages(3, "first", attachment_bytes=400_000))
        first = backups.back_up(vault, ADMIN, tmp_path / "backup")
        archive(vault, messages(3, "second", attachment_bytes=400_000))
        second = backups.back_up(vault, ADMIN, tmp_path / "backup")
    sealed = "volumes/active/00000001.vol"
    assert sealed in first.copied
    assert second.kept == [sealed]
    assert sealed not in second.copied
    assert "volumes/active/00000002.vol" in second.copied
    assert second.bytes_copied < first.bytes_copied + 1_300_000
    assert backups.check_backup(ADMIN, tmp_path / "backup").ok
    restored = backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored",
                               keys_from=vault_path / "keys")
    assert restored.messages == 6
    with Vault.open(tmp_path / "restored") as again:
        assert monitoring.verify(again, READER).ok


@pytest.mark.parametrize("victim", ["volumes/active/00000001.vol", "catalog.sqlite",
                                    "backup.json", "mailvault.toml"])
def test_a_flipped_byte_fails_backup_verify(vault: Vault, tmp_path: Path, victim: str) -> None:
    archive(vault, messages(3, "kept"))
    backups.back_up(vault, ADMIN, tmp_path / "backup", include_keys=True)
    path = tmp_path / "backup" / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    found = backups.check_backup(ADMIN, tmp_path / "backup")

    assert not found.ok
    assert found.problems
    with pytest.raises(InputError, match="does not verify"):
        backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_a_backup_without_keys_is_restored_with_the_keys_supplied(
        vault: Vault, tmp_path: Path) -> None:
    archive(vault, messages(4, "keys"))
    backups.back_up(vault, ADMIN, tmp_path / "backup")
    assert not (tmp_path / "backup" / "keys").exists()
    with pytest.raises(InputError, match="holds no keys"):
        backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored")
    Vault.create(tmp_path / "other").close()
    with pytest.raises(InputError, match="not the ones the backup was taken with"):
        backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored",
                        keys_from=tmp_path / "other" / "keys")
    assert not (tmp_path / "restored").exists()

    backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored",
                    keys_from=vault.path / "keys")

    with Vault.open(tmp_path / "restored") as again:
        assert monitoring.verify(again, READER).ok
        assert finding.count(again, READER, "subject:keys") == 4


def test_only_an_administrator_backs_up(vault: Vault, tmp_path: Path) -> None:
    auditor = Principal(name="auditor", roles=frozenset({Role.AUDITOR}))
    with pytest.raises(PermissionDenied):
        backups.back_up(vault, auditor, tmp_path / "backup")
    assert not (tmp_path / "backup").exists()
    with pytest.raises(PermissionDenied):
        backups.restore(auditor, tmp_path / "backup", tmp_path / "restored")


def test_a_backup_refuses_a_folder_that_is_not_a_backup(vault: Vault, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty and holds no backup"):
        backups.back_up(vault, ADMIN, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(InputError, match="inside the vault"):
        backups.back_up(vault, ADMIN, vault.path / "backup")


def test_the_commands(vault: Vault, tmp_path: Path) -> None:
    archive(vault, messages(2, "cli"))
    vault.close()
    backup = tmp_path / "backup"
    made = invoke("backup", "--to", backup, "--vault", vault.path, "--json")
    assert made.exit_code == 0, made.stdout
    assert made.json()["messages"] == 2
    assert invoke("backup", "verify", backup).exit_code == 0
    restored = invoke("init", "--from-backup", backup, "--keys", vault.path / "keys",
                      "--vault", tmp_path / "restored")
    assert restored.exit_code == 0, restored.stdout
    assert invoke("count", "", "--vault", tmp_path / "restored").text.strip() == "2"
    catalog = backup / "catalog.sqlite"
    catalog.write_bytes(catalog.read_bytes()[:-1] + b"\x01")
    broken = invoke("backup", "verify", backup)
    assert broken.exit_code == 1
    assert "catalog.sqlite" in broken.text


def test_a_manifest_naming_files_outside_the_backup_is_refused(vault: Vault,
                                                               tmp_path: Path) -> None:
    archive(vault, messages(1, "escape"))
    backups.back_up(vault, ADMIN, tmp_path / "backup", include_keys=True)
    (tmp_path / "escape.txt").write_text("outside")
    # Anyone can write a manifest whose digest matches: its names must stay inside.
    forged = manifest.read(tmp_path / "backup")
    forged.files["../escape.txt"] = manifest.hash_file(tmp_path / "escape.txt")
    manifest.write(tmp_path / "backup", forged)

    found = backups.check_backup(ADMIN, tmp_path / "backup")

    assert [p for p in found.problems if "outside the backup" in p]
    with pytest.raises(InputError, match="does not verify"):
        backups.restore(ADMIN, tmp_path / "backup", tmp_path / "one" / "restored")
    assert not (tmp_path / "one").exists()


def test_a_backup_with_the_index_restores_it_searchable(vault: Vault, tmp_path: Path) -> None:
    archive(vault, messages(3, "indexed"))
    report = backups.back_up(vault, ADMIN, tmp_path / "backup", include_keys=True,
                             include_index=True)
    archive(vault, messages(2, "later"))
    assert any(name.startswith("index/") for name in report.copied)
    assert backups.check_backup(ADMIN, tmp_path / "backup").ok

    backups.restore(ADMIN, tmp_path / "backup", tmp_path / "restored")

    with Vault.open(tmp_path / "restored") as again:
        assert finding.count(again, READER, "") == 3
        assert finding.count(again, READER, "subject:indexed") == 3
        assert finding.count(again, READER, "subject:later") == 0
        archive(again, messages(1, "new"))
        assert finding.count(again, READER, "") == 4
        assert monitoring.verify(again, READER).ok
