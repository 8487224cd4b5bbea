"""Running syncs in tests and reading back what the vault recorded."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select

from mailvault.ingest.pipeline import Pipeline
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.report import SyncReport
from mailvault.sources.sync import sync
from mailvault.store import schema
from mailvault.vault import Vault
from tests.support import stored_provenance


def run_sync(vault: Vault, spec: SourceSpec) -> SyncReport:
    """One sync with a single worker process (the machine is shared)."""
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        return sync(vault, spec, pipeline, "test")


def message_hashes(vault: Vault) -> set[str]:
    with vault.engine.connect() as conn:
        return set(conn.execute(select(schema.messages.c.sha256)).scalars())


def arrivals(vault: Vault, source: str) -> list[dict[str, Any]]:
    """Every provenance recorded for a source, as dicts."""
    with vault.engine.connect() as conn:
        rows = conn.execute(select(schema.provenance.c.data)
                            .where(schema.provenance.c.source == source)).scalars()
        return [stored_provenance(r) for r in rows]


def per_folder(vault: Vault, source: str) -> Counter[tuple[str, str]]:
    return Counter((a["account"], a["folder"]) for a in arrivals(vault, source))


def message_count(vault: Vault) -> int:
    with vault.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.messages)).scalar()
                   or 0)
