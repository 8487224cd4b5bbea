"""Export jobs in the catalog: the messages an export holds (fixed when it starts), how far
it got (the checkpoint), and what it wrote for each message.

The message list is taken once, when the job starts, so a resumed job exports exactly what
the first run would have; items are done in message-id order, and the checkpoint (the last
message id done, how many) moves forward in the same transaction that records what was
written for a batch (one record, kept on the batch's last item).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from mailvault.errors import NotFoundError
from mailvault.store import audit, schema
from mailvault.store.catalog import from_epoch, now
from mailvault.vault import Vault

_PAGE = 5000


@dataclass(frozen=True)
class ExportJob:
    """One export job and its progress."""

    id: int
    case_id: int | None
    query: str
    format: str
    layout: str
    zip: bool
    dest: str
    actor: str
    state: str
    total: int
    done: int
    last_message: int
    errors: int
    summary_sha256: str
    created_at: datetime | None
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "case_id": self.case_id, "query": self.query,
                "format": self.format, "layout": self.layout, "zip": self.zip,
                "dest": self.dest, "actor": self.actor, "state": self.state,
                "total": self.total, "done": self.done, "errors": self.errors,
                "summary_sha256": self.summary_sha256,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


def create(vault: Vault, *, case_id: int | None, query: str, fmt: str, layout: str,
           zip_it: bool, dest: Path, actor: str, ids: Iterable[int]) -> ExportJob:
    """A new job holding these messages (one transaction: a job exists whole or not at all;
    audited ``export-start``)."""
    items = schema.export_items
    with vault.engine.begin() as conn:
        result = conn.execute(insert(schema.export_jobs).values(
            case_id=case_id, query=query, format=fmt, layout=layout, zip=zip_it,
            dest=str(dest), actor=actor, state="running", total=0, created_at=now()))
        assert result.inserted_primary_key is not None
        job_id = int(result.inserted_primary_key[0])
        total = 0
        page: list[dict[str, int]] = []
        for message_id in ids:
            page.append({"job_id": job_id, "message_id": message_id})
            if len(page) >= _PAGE:
                conn.execute(insert(items), page)
                total += len(page)
                page = []
        if page:
            conn.execute(insert(items), page)
            total += len(page)
        conn.execute(update(schema.export_jobs).where(schema.export_jobs.c.id == job_id)
                     .values(total=total))
        audit.record(conn, actor, "export-start", {
            "job": job_id, "query": query, "format": fmt, "layout": layout, "zip": zip_it,
            "to": str(dest), "messages": total}, case=case_id)
    return get(vault, job_id)


def get(vault: Vault, job_id: int) -> ExportJob:
    """One job by id; NotFoundError when there is none (or the number is out of range)."""
    if not 0 < job_id < 2**63:
        raise NotFoundError(f"there is no export job {job_id}.")
    with vault.engine.connect() as conn:
        row = conn.execute(select(schema.export_jobs)
                           .where(schema.export_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFoundError(f"there is no export job {job_id}.")
    return _job(row)


def at(vault: Vault, dest: Path) -> ExportJob | None:
    """The newest job that writes to ``dest``, if any."""
    table = schema.export_jobs
    with vault.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.dest == str(dest))
                           .order_by(table.c.id.desc()).limit(1)).first()
    return None if row is None else _job(row)


def listed(vault: Vault, case_id: int | None = None) -> list[ExportJob]:
    """Every job, newest first (one case's, if given)."""
    table = schema.export_jobs
    query = select(table).order_by(table.c.id.desc())
    if case_id is not None:
        query = query.where(table.c.case_id == case_id)
    with vault.engine.connect() as conn:
        return [_job(r) for r in conn.execute(query)]


def next_ids(vault: Vault, job: ExportJob, after: int, limit: int) -> list[int]:
    """The next message ids of the job after ``after``, in order."""
    items = schema.export_items
    with vault.engine.connect() as conn:
        return list(conn.execute(select(items.c.message_id).where(
            items.c.job_id == job.id, items.c.message_id > after)
            .order_by(items.c.message_id).limit(limit)).scalars())


def checkpoint(vault: Vault, job: ExportJob, last_message: int, count: int,
               record: dict[str, Any], errors: int) -> ExportJob:
    """Record what a batch of ``count`` messages wrote (one row: the record is kept on the
    batch's last message) and move the checkpoint past it, in one transaction."""
    items = schema.export_items
    with vault.engine.begin() as conn:
        conn.execute(update(items).where(items.c.job_id == job.id,
                                         items.c.message_id == last_message)
                     .values(record=json.dumps(record)))
        conn.execute(update(schema.export_jobs).where(schema.export_jobs.c.id == job.id)
                     .values(done=job.done + count, last_message=last_message,
                             errors=job.errors + errors))
    return replace(job, done=job.done + count, last_message=last_message,
                   errors=job.errors + errors)


def records(vault: Vault, job: ExportJob, up_to: int | None = None
            ) -> Iterator[tuple[int, dict[str, Any]]]:
    """What was written for each batch done, in order, read a page at a time."""
    items = schema.export_items
    after = 0
    while True:
        query = (select(items.c.message_id, items.c.record)
                 .where(items.c.job_id == job.id, items.c.message_id > after,
                        items.c.record != "").order_by(items.c.message_id).limit(_PAGE))
        if up_to is not None:
            query = query.where(items.c.message_id <= up_to)
        with vault.engine.connect() as conn:
            rows = list(conn.execute(query))
        for row in rows:
            yield row.message_id, json.loads(row.record)
        if len(rows) < _PAGE:
            return
        after = rows[-1].message_id


def finish(vault: Vault, job: ExportJob, summary_sha256: str,
           counts: dict[str, int]) -> ExportJob:
    """Mark the job done (audited ``export-finish`` with its counts and summary hash)."""
    with vault.engine.begin() as conn:
        conn.execute(update(schema.export_jobs).where(schema.export_jobs.c.id == job.id)
                     .values(state="done", summary_sha256=summary_sha256, finished_at=now()))
        audit.record(conn, job.actor, "export-finish", {
            "job": job.id, "summary_sha256": summary_sha256, **counts}, case=job.case_id)
    return get(vault, job.id)


def resumed(vault: Vault, job: ExportJob, actor: str) -> None:
    """Record that a job was taken up again (audited ``export-resume``)."""
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "export-resume", {"job": job.id, "done": job.done,
                                                    "total": job.total}, case=job.case_id)


def _job(row: Any) -> ExportJob:
    return ExportJob(id=row.id, case_id=row.case_id, query=row.query, format=row.format,
                     layout=row.layout, zip=bool(row.zip), dest=row.dest, actor=row.actor,
                     state=row.state, total=row.total, done=row.done,
                     last_message=row.last_message, errors=row.errors,
                     summary_sha256=row.summary_sha256, created_at=from_epoch(row.created_at),
                     finished_at=from_epoch(row.finished_at))
