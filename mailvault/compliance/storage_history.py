"""Storage per tier over time: samples of what each tier holds, for the monitoring page.

The catalog knows only what the tiers hold now, so the history is recorded: ``serve`` takes
a sample every ``[monitoring] storage_sample_minutes`` (``storage_sampler_service``), and a
monitoring read takes one when the newest is older than that (``sample_if_due``), so a vault
that is not served still gets a point each time someone looks. A sample is one row per tier
(messages, raw bytes, stored bytes); samples older than ``storage_sample_days`` are deleted
when a new one is written. Taking a sample is bookkeeping, not a human action: it is not audited.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, select

from mailvault.capture.services import PeriodicService
from mailvault.compliance.inventory import tier_totals
from mailvault.errors import MailvaultError
from mailvault.store import schema
from mailvault.store.catalog import now

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext
    from mailvault.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StorageSample:
    """What one tier held at ``at`` (seconds since the epoch)."""

    at: int
    tier: str
    messages: int
    raw_bytes: int
    stored_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "tier": self.tier, "messages": self.messages,
                "raw_bytes": self.raw_bytes, "stored_bytes": self.stored_bytes}


def period_s(vault: Vault) -> int:
    """How often a sample is due, in seconds (at least a minute)."""
    return max(1, vault.settings.monitoring.storage_sample_minutes) * 60


def record(vault: Vault, at: int | None = None) -> list[StorageSample]:
    """Take a sample of every tier now (a tier that holds nothing is recorded as 0 once it
    has held something, so its line falls to zero on the chart) and drop old samples."""
    taken_at = now() if at is None else at
    keep_s = max(1, vault.settings.monitoring.storage_sample_days) * 86_400
    with vault.engine.begin() as conn:
        totals = tier_totals(conn)
        known = set(conn.execute(select(schema.storage_samples.c.tier).distinct()).scalars())
        rows = [StorageSample(taken_at, tier, totals[tier].messages if tier in totals else 0,
                              totals[tier].raw_bytes if tier in totals else 0,
                              totals[tier].stored_bytes if tier in totals else 0)
                for tier in sorted(set(totals) | known)]
        if rows:
            conn.execute(insert(schema.storage_samples),
                         [{k: v for k, v in r.to_json().items()} for r in rows])
        conn.execute(delete(schema.storage_samples)
                     .where(schema.storage_samples.c.at < taken_at - keep_s))
    return rows


def newest_at(conn: Connection) -> int | None:
    """When the newest sample was taken (None: never)."""
    value = conn.execute(select(func.max(schema.storage_samples.c.at))).scalar()
    return None if value is None else int(value)


def sample_if_due(vault: Vault) -> bool:
    """Take a sample when the newest is older than the period; True when one was taken.
    A read on a full disk takes none and says nothing: the page shows what there is."""
    with vault.engine.connect() as conn:
        newest = newest_at(conn)
    if newest is not None and now() - newest < period_s(vault):
        return False
    try:
        record(vault)
    except MailvaultError as exc:
        log.warning("no storage sample: %s", exc)
        return False
    return True


def samples(vault: Vault, since: int) -> list[StorageSample]:
    """Every sample taken at or after ``since``, oldest first."""
    s = schema.storage_samples
    with vault.engine.connect() as conn:
        rows: Iterable[Any] = conn.execute(
            select(s.c.at, s.c.tier, s.c.messages, s.c.raw_bytes, s.c.stored_bytes)
            .where(s.c.at >= since).order_by(s.c.at, s.c.tier))
        return [StorageSample(r.at, r.tier, r.messages, r.raw_bytes, r.stored_bytes)
                for r in rows]


def storage_sampler_service(context: ServeContext) -> PeriodicService[bool]:
    """The storage sampler (always on under ``serve``): a sample every period, in a worker
    thread (the totals are a few aggregate queries over the catalog)."""
    vault = context.vault
    return PeriodicService("storage-sampler", lambda _stopping: sample_if_due(vault),
                           lambda: period_s(vault), vault)
