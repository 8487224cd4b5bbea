"""A backup cut short never passes for a whole one, and the next run goes on from it.

A backup of a vault with its catalog in PostgreSQL and its volumes in a bucket (the several
nodes' profile) is killed with SIGKILL right after its first object is copied: the folder then
has no manifest and fails `backup verify`; the next run keeps that copy (objects never
change), copies the rest, and the backup restores byte-exact. A full disk under the backup
folder is one sentence; once there is space again the next run keeps the sealed volumes the
first one copied. A journal line cut short by a kill is passed over, and a volume this machine
does not have (another node's, not uploaded yet) is one sentence.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailvault.backup import journal, manifest
from mailvault.compliance import object_lock
from mailvault.errors import StorageFullError, StoreError
from mailvault.usecases import backups
from mailvault.vault import CATALOG_FILE, Vault
from tests import full_disk
from tests import s3_server as moto
from tests.backup.conftest import (
    ADMIN,
    archive_in_batches,
    assert_restored,
    by_hash,
    messages,
    s3_store,
)
from tests.postgresql.conftest import Catalog
from tests.support import invoke

_BIG = 300_000

_KILLED_BACKUP = """\
import os, signal, sys
from pathlib import Path
from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.usecases import backups, vaults

def progress(name, _amount):
    if name.startswith("volumes/"):
        os.kill(os.getpid(), signal.SIGKILL)

vault_path, folder = sys.argv[1:3]
with vaults.opened(Path(vault_path)) as vault:
    backups.back_up(vault, Principal("test", frozenset({Role.ADMIN})), Path(folder),
                    progress=progress)
"""


def test_a_killed_backup_is_not_complete_and_the_next_run_keeps_what_it_copied(
        pg_catalog: Catalog, s3_env: moto.MotoServer, tmp_path: Path) -> None:
    raws = messages(12, "killed", _BIG)
    with Vault.create(tmp_path / "vault", store=s3_store(s3_env, s3_env.new_bucket()),
                      catalog_url=pg_catalog.url,
                      catalog_password_file=str(pg_catalog.password_file)) as vault:
        archive_in_batches(vault, raws)
        uploaded = object_lock.upload_pending(vault).uploaded
    assert len(uploaded) >= 3
    backup = tmp_path / "backup"

    killed = subprocess.run([sys.executable, "-c", _KILLED_BACKUP, str(tmp_path / "vault"),
                             str(backup)], capture_output=True, timeout=300, check=False,
                            env={**os.environ})
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert not (backup / manifest.MANIFEST_FILE).exists()
    copied_before = set(journal.read(backup))
    assert len(copied_before) == 1
    assert invoke("backup", "verify", backup).exit_code == 1

    with Vault.open(tmp_path / "vault") as vault:
        report = backups.back_up(vault, ADMIN, backup)
    assert set(report.kept) == copied_before
    assert report.objects_copied == len(uploaded) - 1
    assert not journal.exists(backup)
    assert invoke("backup", "verify", backup).exit_code == 0
    backups.restore(ADMIN, backup, tmp_path / "restored", keys_from=tmp_path / "vault" / "keys")
    assert_restored(tmp_path / "restored", by_hash(raws), report.audit_seq)


def test_a_full_disk_is_one_sentence_and_the_next_run_keeps_the_sealed_copies(
        vault_path: Path, tmp_path: Path) -> None:
    Vault.create(vault_path).close()
    (vault_path / "mailvault.toml").write_text("[store]\nvolume_max_mb = 1\n")
    raws = messages(12, "full", _BIG)
    with Vault.open(vault_path) as vault:
        archive_in_batches(vault, raws)
        volumes = sorted((vault_path / "volumes").rglob("*.vol"))
        assert len(volumes) >= 3
        catalog_bytes = sum(p.stat().st_size for p in vault_path.glob(f"{CATALOG_FILE}*"))
        # Room for the catalog's copy and the first volume, not for the second.
        room = catalog_bytes + volumes[0].stat().st_size + 256 * 1024
        with full_disk.tmpfs(tmp_path / "small", f"{room // 1024}k") as disk:
            with pytest.raises(StorageFullError) as failed:
                backups.back_up(vault, ADMIN, disk / "backup")
            sentence = str(failed.value)
            assert "is full" in sentence and "\n" not in sentence
            assert not (disk / "backup" / manifest.MANIFEST_FILE).exists()
            assert not list((disk / "backup").rglob("*.part"))
            copied_before = set(journal.read(disk / "backup"))
            assert copied_before == {manifest.volume_name("active", 1)}

            full_disk.resize(disk, "64m")
            report = backups.back_up(vault, ADMIN, disk / "backup")
            assert set(report.kept) == copied_before
            assert backups.check_backup(ADMIN, disk / "backup").ok
            backups.restore(ADMIN, disk / "backup", tmp_path / "restored",
                            keys_from=vault_path / "keys")
    assert_restored(tmp_path / "restored", by_hash(raws), report.audit_seq)


def test_a_journal_line_cut_short_by_a_kill_is_passed_over(tmp_path: Path) -> None:
    whole = manifest.FileEntry(size=3, sha256="ab" * 32, volume=1, tier="active", sealed=True)
    journal.start(tmp_path, {manifest.volume_name("active", 1): whole})
    with open(tmp_path / journal.JOURNAL_FILE, "a", encoding="utf-8") as cut:
        cut.write('{"name": "volumes/active/00000002.vol", "sealed": tr')
    assert journal.read(tmp_path) == {manifest.volume_name("active", 1): whole}


def test_a_volume_that_is_not_on_this_machine_is_one_sentence(vault: Vault,
                                                              tmp_path: Path) -> None:
    """As another node's volume not uploaded yet looks from here: the catalog names a local
    file this machine does not have, and no object."""
    archive_in_batches(vault, messages(2, "elsewhere"))
    missing = vault.path / "volumes" / "active" / "00000001.vol"
    missing.unlink()
    with pytest.raises(StoreError) as failed:
        backups.back_up(vault, ADMIN, tmp_path / "backup")
    sentence = str(failed.value)
    assert "volume 1 is not in" in sentence and "run the backup again" in sentence
    assert not (tmp_path / "backup" / manifest.MANIFEST_FILE).exists()
