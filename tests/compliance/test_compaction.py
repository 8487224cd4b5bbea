"""Compaction interrupted at its two dangerous points: nothing is lost, and the next run
finishes the job."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mailvault.compliance import compaction, tiers
from mailvault.compliance.verify import verify
from mailvault.errors import StoreError
from mailvault.store import catalog
from mailvault.vault import Vault
from tests.compliance.conftest import archive
from tests.support import Attachment, build_message


class Crash(StoreError):
    """Stands for the process dying at this point."""


def filled(vault: Vault) -> tuple[dict[str, bytes], Path]:
    """Ten messages (two sharing an attachment), half moved to Open; the sealed Active
    volume they left half free."""
    shared = Attachment("shared.bin", bytes(range(256)) * 40)
    raws = [build_message(subject=f"m{n}", attachments=[shared] if n < 2 else [])
            for n in range(10)]
    ids = archive(vault, raws)
    vault.blobs.volumes("active").seal()
    (volume,) = vault.tier_folder("active").glob("*.vol")
    tiers.run_job(vault, tiers.create_job(vault, ids[::2], "open", "half", "test").id)
    return {hashlib.sha256(r).hexdigest(): r for r in raws}, volume


def contents(vault: Vault) -> dict[str, bytes]:
    with vault.engine.connect() as conn:
        return {row.sha256: vault.read_raw(row) for row in catalog.iter_messages(conn)}


def test_crash_before_the_switch_keeps_the_old_volume(small_vault: Vault,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    expected, volume = filled(small_vault)

    def crash(*_args: object) -> None:
        raise Crash("killed before the catalog switch")

    monkeypatch.setattr(small_vault.blobs, "sync", crash)
    with pytest.raises(Crash):
        compaction.compact(small_vault, "test", min_free=0.1)
    monkeypatch.undo()
    assert volume.exists()
    assert contents(small_vault) == expected
    assert compaction.compact(small_vault, "test", min_free=0.1).volumes == [int(volume.stem)]
    assert contents(small_vault) == expected
    assert verify(small_vault, "test").ok


def test_crash_after_the_switch_leaves_a_free_volume(small_vault: Vault,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    expected, volume = filled(small_vault)

    def crash(_path: Path) -> None:
        raise Crash("killed before the old file was deleted")

    monkeypatch.setattr(compaction, "_unlink", crash)
    with pytest.raises(Crash):
        compaction.compact(small_vault, "test", min_free=0.1)
    monkeypatch.undo()
    assert volume.exists()
    assert contents(small_vault) == expected
    free = {u.id: u for u in compaction.usage(small_vault)}[int(volume.stem)]
    assert free.live == 0
    assert compaction.compact(small_vault, "test").volumes == [int(volume.stem)]
    assert not volume.exists()
    assert contents(small_vault) == expected
    assert verify(small_vault, "test").ok
