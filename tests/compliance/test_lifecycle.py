"""Lifecycle rules from [tiers]: mail moves by age, unfinished moves resume, and serve runs
the pass on a schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mailvault.compliance import lifecycle, tiers
from mailvault.errors import BusyError
from mailvault.store import claims, schema
from mailvault.vault import Vault
from tests.compliance.conftest import archive
from tests.support import build_message

NOW = datetime.now(UTC)


def tier_of(vault: Vault) -> dict[int, str]:
    with vault.engine.connect() as conn:
        return dict(conn.execute(select(schema.messages.c.id, schema.messages.c.tier)).all())


def test_rules_move_mail_by_age(small_vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    old, middle, recent = archive(small_vault, [
        build_message(subject="old", date=NOW - timedelta(days=800)),
        build_message(subject="middle", date=NOW - timedelta(days=100)),
        build_message(subject="recent", date=NOW - timedelta(days=5)),
    ])
    settings = small_vault.settings.tiers
    monkeypatch.setattr(settings, "open_after_days", 90)
    monkeypatch.setattr(settings, "deep_after_days", 365)
    monkeypatch.setattr(settings, "lifecycle_age_from", "date")
    report = lifecycle.apply(small_vault)
    assert report.moved == {"deep": 1, "open": 1}
    assert tier_of(small_vault) == {old: "deep", middle: "open", recent: "active"}
    assert lifecycle.apply(small_vault).moved == {}


def test_a_pass_resumes_unfinished_moves(small_vault: Vault) -> None:
    ids = archive(small_vault, [build_message(subject=f"m{n}") for n in range(3)])
    job = tiers.create_job(small_vault, ids, "open", "left behind", "admin")
    assert lifecycle.apply(small_vault).resumed == [job.id]
    assert set(tier_of(small_vault).values()) == {"open"}


def test_a_move_another_node_is_running_is_refused_here_and_skipped_by_the_pass(
        small_vault: Vault) -> None:
    """A tier job is claimed while it runs: a command (or a pass) on a second node is told
    where it runs instead of moving the same messages at the same time, and the pass goes
    on with the rest of its work; once the other node lets go, it is finished here."""
    ids = archive(small_vault, [build_message(subject=f"busy {n}") for n in range(3)])
    job = tiers.create_job(small_vault, ids, "open", "by hand elsewhere", "admin")
    held = claims.claim(small_vault.engine, f"tier-move:{job.id}", "node-b", 600)
    assert held is not None
    with pytest.raises(BusyError, match=f"tier move job {job.id} is running on node-b"):
        tiers.run_job(small_vault, job.id)
    assert lifecycle.apply(small_vault).resumed == []
    assert set(tier_of(small_vault).values()) == {"active"}
    claims.release(small_vault.engine, held)
    assert lifecycle.apply(small_vault).resumed == [job.id]
    assert set(tier_of(small_vault).values()) == {"open"}


def test_serve_runs_the_pass(small_vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    archive(small_vault, [build_message(subject="aged", date=NOW - timedelta(days=400))])
    monkeypatch.setattr(small_vault.settings.tiers, "deep_after_days", 365)
    monkeypatch.setattr(small_vault.settings.tiers, "lifecycle_age_from", "date")
    service = lifecycle.periodic_lifecycle(small_vault)

    async def run_once() -> None:
        assert await service.start() == []
        for _ in range(600):
            if service.last is not None:
                break
            await asyncio.sleep(0.05)
        await service.stop()

    asyncio.run(run_once())
    assert service.last is not None and service.last.moved == {"deep": 1}
    assert set(tier_of(small_vault).values()) == {"deep"}


def test_a_pass_compacts_released_sealed_volumes(small_vault: Vault,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    archive(small_vault, [build_message(subject=f"aged {n}", date=NOW - timedelta(days=400))
                          for n in range(20)])
    small_vault.blobs.volumes("active").seal()
    (sealed,) = small_vault.tier_folder("active").glob("*.vol")
    monkeypatch.setattr(small_vault.settings.tiers, "deep_after_days", 365)
    monkeypatch.setattr(small_vault.settings.tiers, "lifecycle_age_from", "date")
    report = lifecycle.apply(small_vault)
    assert report.moved == {"deep": 20}
    assert report.compacted == [int(sealed.stem)] and not sealed.exists()
