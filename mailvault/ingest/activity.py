"""What archiving has been doing: messages archived per minute, and the recent batches.

Both are read from what the pipeline already writes: each message's ``archived_at`` (an
index keeps the last hours cheap to count) and the ``ingest`` audit entry of every committed
batch (its counts and the sources it came from; never the hashes it lists, nor content).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from mailvault.store import audit, schema

MINUTE_S = 60


@dataclass(frozen=True)
class IngestBatch:
    """One committed batch of the pipeline, as its ``ingest`` entry records it."""

    at: datetime
    actor: str
    tier: str
    archived: int
    duplicates: int
    refused: int
    sources: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(timespec="seconds"), "actor": self.actor,
                "tier": self.tier, "archived": self.archived, "duplicates": self.duplicates,
                "refused": self.refused, "sources": self.sources}


def archived_per_minute(conn: Connection, since: int, until: int) -> list[int]:
    """How many messages were archived in each minute from ``since`` up to ``until``
    (seconds since the epoch; ``since`` rounded down to its minute), oldest first, one
    entry per minute (0 for a quiet one)."""
    start = since - since % MINUTE_S
    minutes = max(1, (until - start) // MINUTE_S + 1)
    counts = [0] * minutes
    m = schema.messages
    bucket = (m.c.archived_at - start) // MINUTE_S
    for index, count in conn.execute(
            select(bucket, func.count()).where(m.c.archived_at >= start,
                                               m.c.archived_at <= until).group_by(bucket)):
        if 0 <= int(index) < minutes:
            counts[int(index)] += int(count)
    return counts


def recent_batches(conn: Connection, limit: int) -> list[IngestBatch]:
    """The newest ``limit`` committed batches, newest first."""
    batches = []
    for entry in audit.newest_first(conn, "ingest", limit=limit):
        detail = entry.detail
        batches.append(IngestBatch(
            at=entry.at, actor=entry.actor, tier=str(detail.get("tier", "")),
            archived=int(detail.get("archived", 0)),
            duplicates=int(detail.get("duplicates", 0)),
            refused=int(detail.get("refused", 0)),
            sources=[str(s) for s in detail.get("sources", [])]))
    return batches


def archived_by_kind(conn: Connection) -> dict[str, tuple[int, int]]:
    """Source kind -> (messages, raw bytes) of the messages in the vault with an arrival of
    that kind (a message that came by SMTP and by IMAP counts under both)."""
    pv, m = schema.provenance, schema.messages
    kinds = select(pv.c.kind, pv.c.message_id).distinct().subquery()
    rows = conn.execute(select(kinds.c.kind, func.count(), func.sum(m.c.size))
                        .join(m, m.c.id == kinds.c.message_id).group_by(kinds.c.kind))
    return {kind: (int(count), int(size or 0)) for kind, count, size in rows}


def failures_by_kind(conn: Connection) -> dict[str, int]:
    """Source kind -> how many recorded failures are not settled."""
    f = schema.failures
    rows = conn.execute(select(f.c.kind, func.count()).where(f.c.resolved.is_(False))
                        .group_by(f.c.kind))
    return {kind: int(count) for kind, count in rows}
