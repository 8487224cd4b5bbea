"""The one audit writer: an append-only log whose entries are chained by SHA-256.

Each entry's hash covers its own fields and the previous entry's hash, so editing, inserting
or removing an entry breaks the chain from that point on. Keeping the current head hash
somewhere outside the archive (``mailvault audit head``) makes a rollback of the whole log
detectable too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from mailvault.store import schema
from mailvault.store.catalog import from_epoch, now

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    seq: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "detail": self.detail, "prev_hash": self.prev_hash,
                "hash": self.hash}


def entry_hash(prev_hash: str, seq: int, at: int, actor: str, action: str, detail: str) -> str:
    """The chained hash of one entry."""
    body = json.dumps([prev_hash, seq, at, actor, action, detail], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def record(conn: Connection, actor: str, action: str, detail: dict[str, Any]) -> str:
    """Append an entry inside the caller's transaction; returns its hash.

    The row is inserted before the previous hash is read: the insert takes the database's
    write lock, so no other writer can slip an entry in between.
    """
    at = now()
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    result = conn.execute(schema.audit_log.insert().values(
        at=at, actor=actor, action=action, detail=text, prev_hash="", hash=""))
    assert result.inserted_primary_key is not None
    seq = int(result.inserted_primary_key[0])
    prev = conn.execute(select(schema.audit_log.c.hash).where(schema.audit_log.c.seq < seq)
                        .order_by(schema.audit_log.c.seq.desc()).limit(1)).scalar()
    prev_hash = prev or GENESIS
    digest = entry_hash(prev_hash, seq, at, actor, action, text)
    conn.execute(update(schema.audit_log).where(schema.audit_log.c.seq == seq)
                 .values(prev_hash=prev_hash, hash=digest))
    return digest


def entries(conn: Connection, since: datetime | None = None) -> Iterator[AuditEntry]:
    """Entries in order, optionally from a time on."""
    query = select(schema.audit_log).order_by(schema.audit_log.c.seq)
    if since is not None:
        query = query.where(schema.audit_log.c.at >= int(since.timestamp()))
    for row in conn.execute(query):
        yield AuditEntry(seq=row.seq, at=from_epoch(row.at) or datetime.now(UTC),
                         actor=row.actor, action=row.action, detail=json.loads(row.detail),
                         prev_hash=row.prev_hash, hash=row.hash)


def head(conn: Connection) -> tuple[int, str]:
    """(seq, hash) of the newest entry; (0, GENESIS) for an empty log."""
    row = conn.execute(select(schema.audit_log.c.seq, schema.audit_log.c.hash)
                       .order_by(schema.audit_log.c.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def verify(conn: Connection) -> list[str]:
    """Every break in the chain, as sentences; an empty list means the log is intact."""
    problems = []
    prev_hash = GENESIS
    prev_seq = 0
    rows = conn.execute(select(schema.audit_log).order_by(schema.audit_log.c.seq))
    for row in rows:
        if row.seq != prev_seq + 1:
            problems.append(f"audit entries {prev_seq + 1} to {row.seq - 1} are missing.")
        if row.prev_hash != prev_hash:
            problems.append(f"audit entry {row.seq} does not follow the entry before it.")
        expected = entry_hash(row.prev_hash, row.seq, row.at, row.actor, row.action, row.detail)
        if row.hash != expected:
            problems.append(f"audit entry {row.seq} was altered after it was written.")
        prev_hash, prev_seq = row.hash, row.seq
    return problems
