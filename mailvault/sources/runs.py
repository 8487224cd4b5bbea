"""The record of each sync run: when, how long, what it archived, how it ended."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from mailvault.store import catalog, schema

RUNNING = "running"
OK = "ok"
PARTIAL = "partial"
FAILED = "failed"
INTERRUPTED = "interrupted"

_runs = schema.source_runs


@dataclass(frozen=True)
class Run:
    """One finished (or running) sync of one source."""

    id: int
    source: str
    started_at: int
    finished_at: int | None
    status: str
    archived: int
    duplicates: int
    failed: int
    error: str
    detail: dict[str, Any]

    @property
    def seconds(self) -> int | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


def start(conn: Connection, source: str) -> int:
    """Open a run record; returns its id."""
    result = conn.execute(insert(_runs).values(source=source, started_at=catalog.now(),
                                               status=RUNNING))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def finish(conn: Connection, run_id: int, status: str, counts: dict[str, int], error: str,
           detail: dict[str, Any]) -> None:
    """Close a run record with its outcome."""
    conn.execute(update(_runs).where(_runs.c.id == run_id).values(
        finished_at=catalog.now(), status=status, archived=counts.get("archived", 0),
        duplicates=counts.get("duplicates", 0), failed=counts.get("failed", 0),
        error=error, detail=json.dumps(detail, ensure_ascii=False, default=str)))


def last(conn: Connection, source: str) -> Run | None:
    """The newest run of a source."""
    row = conn.execute(select(_runs).where(_runs.c.source == source)
                       .order_by(_runs.c.id.desc()).limit(1)).first()
    return None if row is None else _run(row)


def last_good(conn: Connection, source: str) -> Run | None:
    """The newest run of a source that finished ok or partly ok (what it brought in is at
    least as new as its start)."""
    row = conn.execute(select(_runs).where(_runs.c.source == source,
                                           _runs.c.status.in_((OK, PARTIAL)))
                       .order_by(_runs.c.id.desc()).limit(1)).first()
    return None if row is None else _run(row)


def _run(row: Any) -> Run:
    return Run(row.id, row.source, row.started_at, row.finished_at, row.status, row.archived,
               row.duplicates, row.failed, row.error, json.loads(row.detail or "{}"))
