"""What the vault holds and what it costs: counts and bytes per tier, and dedup savings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select, union

from mailvault.store import schema

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from mailvault.vault import Vault

# Index bytes of a metadata-only document beyond its text fields (ids, dates, folder, keys),
# an estimate used to share the one index out between tiers.
_DOC_OVERHEAD = 64


@dataclass
class TierStats:
    """One tier: messages, their raw bytes, what is stored for them, index share."""

    messages: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    volume_bytes: int = 0
    index_bytes: int = 0

    def ratios(self) -> dict[str, float | None]:
        raw = self.raw_bytes or None
        per = self.messages or None
        return {
            "stored_of_raw": round(self.stored_bytes / raw, 4) if raw else None,
            "index_of_raw": round(self.index_bytes / raw, 4) if raw else None,
            "stored_per_message": round(self.stored_bytes / per, 1) if per else None,
            "index_per_message": round(self.index_bytes / per, 1) if per else None,
        }


@dataclass
class VaultStats:
    """The whole vault (``mailvault stats``)."""

    messages: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    index_bytes: int = 0
    arrivals: int = 0
    duplicate_arrivals: int = 0
    duplicate_bytes_saved: int = 0
    parts: int = 0
    shared_parts: int = 0
    part_bytes_saved: int = 0
    failures: int = 0
    tiers: dict[str, TierStats] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tiers"] = {name: {**asdict(t), **t.ratios()} for name, t in self.tiers.items()}
        return data


def collect(vault: Vault) -> VaultStats:
    """Count everything (a few aggregate queries; the volume folders are listed on disk)."""
    m, p, pv = schema.messages, schema.parts, schema.provenance
    stats = VaultStats()
    index_weight: dict[str, int] = {}
    with vault.engine.connect() as conn:
        stats.tiers = tier_totals(conn, index_weight)
        per_message = (select(pv.c.message_id, func.count().label("n"))
                       .group_by(pv.c.message_id).subquery())
        arrivals, extra_bytes = conn.execute(
            select(func.sum(per_message.c.n), func.sum((per_message.c.n - 1) * m.c.size))
            .join(m, m.c.id == per_message.c.message_id)).one()
        stats.arrivals = int(arrivals or 0)
        stats.duplicate_bytes_saved = int(extra_bytes or 0)
        stats.parts, stats.shared_parts, stats.part_bytes_saved = (int(x or 0) for x in
            conn.execute(select(func.count(), func.sum(case((p.c.refs > 1, 1), else_=0)),
                                func.sum((p.c.refs - 1) * p.c.size)).where(p.c.refs > 0)).one())
        stats.failures = int(conn.execute(select(func.count()).select_from(schema.failures)
                                          .where(schema.failures.c.resolved.is_(False)))
                             .scalar() or 0)
    stats.messages = sum(t.messages for t in stats.tiers.values())
    stats.raw_bytes = sum(t.raw_bytes for t in stats.tiers.values())
    stats.stored_bytes = sum(t.stored_bytes for t in stats.tiers.values())
    stats.duplicate_arrivals = stats.arrivals - stats.messages
    stats.index_bytes = vault.index.size_bytes()
    for name, tier in stats.tiers.items():
        folder = vault.tier_folder(name)
        tier.volume_bytes = sum(f.stat().st_size for f in folder.glob("*.vol")) \
            if folder.is_dir() else 0
    # Tantivy keeps one index; its size is shared out by what each tier's documents hold:
    # the raw bytes of full-text messages, the metadata text of Deep ones.
    total_weight = sum(index_weight.values()) or 1
    for name, tier in stats.tiers.items():
        tier.index_bytes = int(stats.index_bytes * index_weight.get(name, 0) / total_weight)
    return stats


def tier_totals(conn: Connection, index_weight: dict[str, int] | None = None
                ) -> dict[str, TierStats]:
    """Messages, raw bytes and stored bytes per tier (index bytes left at 0); fills
    ``index_weight`` with what each tier's documents hold, when given."""
    m, p = schema.messages, schema.parts
    totals: dict[str, TierStats] = {}
    metadata = (func.length(m.c.subject) + func.length(m.c.from_addr)
                + func.length(m.c.to_addrs) + func.length(m.c.cc_addrs) + _DOC_OVERHEAD)
    for tier, count, raw, meta in conn.execute(
            select(m.c.tier, func.count(), func.sum(m.c.size), func.sum(metadata))
            .group_by(m.c.tier)):
        totals[tier] = TierStats(messages=count, raw_bytes=raw or 0)
        if index_weight is not None:
            index_weight[tier] = (meta or 0) if tier == "deep" else (raw or 0)
    # A Deep chunk holds many blobs: each record is counted once, whoever points at it.
    records = union(
        select(m.c.tier, m.c.volume_id, m.c.offset, m.c.length),
        select(p.c.tier, p.c.volume_id, p.c.offset, p.c.length).where(p.c.refs > 0),
    ).subquery()
    for tier, length in conn.execute(select(records.c.tier, func.sum(records.c.length))
                                     .group_by(records.c.tier)):
        totals.setdefault(tier, TierStats()).stored_bytes += length or 0
    return totals
