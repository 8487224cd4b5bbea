"""Backups of a vault whose sealed volumes are objects in a bucket (moto's server, the one S3
stand-in: tests/s3_server.py).

The backup copies each object the snapshot uses, whole and checked against the SHA-256 its key
names, beside the local volume still open; a second backup into the folder copies only the
objects that are new. It restores into local volumes and into another bucket (uploaded with
their Object Lock), each byte-exact with `verify` and `audit verify` clean. A bucket that
cannot be reached is one sentence, with no backup left that passes for complete.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailvault.backup import manifest
from mailvault.compliance import object_lock
from mailvault.config import load_settings
from mailvault.errors import StoreError
from mailvault.store import catalog
from mailvault.store.objects import SCHEME
from mailvault.usecases import backups
from mailvault.vault import Vault
from tests import s3_server as moto
from tests.backup.conftest import (
    ADMIN,
    archive_in_batches,
    assert_restored,
    by_hash,
    messages,
    s3_store,
)
from tests.compliance.conftest import archive
from tests.sources.dovecot import free_ports
from tests.support import invoke

# Three of these fill a 1 MB object.
_BIG = 300_000


def _uploaded(vault: Vault) -> set[str]:
    """The backup names of the volumes the catalog says are objects."""
    with vault.engine.connect() as conn:
        extents = catalog.volume_extents(conn)
    places = catalog.volume_places(vault.engine)
    return {manifest.volume_name(extents[v][0], v) for v, place in places.items()
            if place.startswith(SCHEME) and extents[v][2]}


def test_objects_are_copied_once_and_restore_into_volumes_and_into_a_bucket(
        s3_env: moto.MotoServer, tmp_path: Path) -> None:
    first, second, open_ones = (messages(8, "first", _BIG), messages(8, "second", _BIG),
                                messages(2, "open"))
    with Vault.create(tmp_path / "vault", store=s3_store(s3_env, s3_env.new_bucket())) as vault:
        archive_in_batches(vault, first)
        object_lock.upload_pending(vault)
        archive(vault, open_ones)  # stays in the local volume being written
        objects_one = _uploaded(vault)
        one = backups.back_up(vault, ADMIN, tmp_path / "backup")
        archive_in_batches(vault, second)
        object_lock.upload_pending(vault)
        objects_two = _uploaded(vault)
        two = backups.back_up(vault, ADMIN, tmp_path / "backup")

    assert len(objects_one) >= 2 and objects_one < objects_two
    assert one.objects_copied == len(objects_one)
    assert objects_one <= set(one.copied)
    assert any(name not in objects_one for name in one.copied if name.startswith("volumes/"))
    # Objects never change: the second backup keeps every copy it has and fetches the rest.
    assert set(two.kept) == objects_one
    assert two.objects_copied == len(objects_two - objects_one)
    assert two.messages == len(first) + len(second) + len(open_ones)
    checked = backups.check_backup(ADMIN, tmp_path / "backup")
    assert checked.ok, checked.problems
    assert manifest.read(tmp_path / "backup").blobs.startswith(SCHEME)
    expected = by_hash(first + second + open_ones)

    # Into local volumes (the default): the restored vault names no bucket.
    backups.restore(ADMIN, tmp_path / "backup", tmp_path / "local",
                    keys_from=tmp_path / "vault" / "keys")
    assert load_settings(tmp_path / "local").store.blobs == ""
    assert_restored(tmp_path / "local", expected, two.audit_seq)

    # Into another bucket, with its Object Lock: nothing stays on the local disk.
    bucket = s3_env.new_bucket()
    restored = invoke("init", "--from-backup", tmp_path / "backup", "--keys",
                      tmp_path / "vault" / "keys", "--vault", tmp_path / "moved",
                      "--blobs", f"s3://{bucket}/restored", "--s3-endpoint", s3_env.endpoint)
    assert restored.exit_code == 0, restored.stdout
    assert "volumes uploaded" in restored.text
    assert not list((tmp_path / "moved" / "volumes").rglob("*.vol"))
    assert load_settings(tmp_path / "moved").store.blobs == f"s3://{bucket}/restored"
    held = s3_env.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert len(held) == len(objects_two)
    assert_restored(tmp_path / "moved", expected, two.audit_seq)
    assert invoke("audit", "verify", "--vault", tmp_path / "moved").exit_code == 0


def test_a_bucket_that_cannot_be_reached_is_one_sentence(
        s3_env: moto.MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Vault.create(tmp_path / "vault", store=s3_store(s3_env, s3_env.new_bucket())) as vault:
        archive(vault, messages(2, "away"))
        object_lock.upload_pending(vault)
    # Nothing listens on this port any more.
    monkeypatch.setenv("MAILVAULT_STORE_S3_ENDPOINT", f"http://127.0.0.1:{free_ports(1)[0]}")
    with Vault.open(tmp_path / "vault") as vault, pytest.raises(StoreError) as failed:
        backups.back_up(vault, ADMIN, tmp_path / "backup")
    sentence = str(failed.value)
    assert "cannot be reached" in sentence and "\n" not in sentence
    assert not (tmp_path / "backup" / manifest.MANIFEST_FILE).exists()
    assert not list((tmp_path / "backup").rglob("*.part"))
    assert not backups.check_backup(ADMIN, tmp_path / "backup").ok
