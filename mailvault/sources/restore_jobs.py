"""Restores to a mailbox as catalog jobs: what a restore puts where, how far its latest run
got, and how it ended, kept in ``restore_jobs`` as it goes, so that neither a restart of
``serve`` nor a killed command loses it and a resumed restore can say how far the stopped
one had got.

A job is one restore: the same principal, query, target and folder mode. Starting it again
while it is unfinished (stopped, failed, or killed while running) takes up the same job (the
mailbox itself says what is already there, see ``restoring.py``); once done, the same restore
started again is a new job. A run holds the job's lock (``VAULT/locks/restore-ID.lock``,
flock: a killed run lets go of it) for as long as it runs, so a job whose state says
``running`` but whose lock is free was interrupted, and two runs of one job never APPEND at
once.

Progress is written at most every ``_EVERY_COPIES`` copies or ``_EVERY_S`` seconds (one small
UPDATE; a restore's APPENDs cost far more), and always at the start and end of a run.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from mailvault.errors import BusyError, NotFoundError
from mailvault.store import file_modes, schema
from mailvault.store.catalog import from_epoch, now

if TYPE_CHECKING:
    from mailvault.sources.restoring import Progress, RestoreReport
    from mailvault.vault import Vault

UNFINISHED = ("queued", "running", "stopped", "failed")
# What a job reads as when its row says running but no run holds its lock (a killed run).
INTERRUPTED = "interrupted"
_EVERY_COPIES = 100
_EVERY_S = 2.0
# Failures kept in a job's stored report (the audit entry of the run names every message).
_KEPT_FAILURES = 100


@dataclass(frozen=True)
class RestoreJob:
    """One restore and how far its latest run got."""

    id: int
    actor: str
    query: str
    target: str
    folder_mode: str
    state: str
    runs: int
    planned: int
    handled: int
    planned_bytes: int
    handled_bytes: int
    report: dict[str, Any] | None
    error: str
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "query": self.query, "target": self.target,
                "folder_mode": self.folder_mode, "state": self.state, "runs": self.runs,
                "planned": self.planned, "handled": self.handled,
                "planned_bytes": self.planned_bytes, "handled_bytes": self.handled_bytes,
                "report": self.report, "error": self.error or None,
                "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at),
                "finished_at": _iso(self.finished_at)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def take(vault: Vault, actor: str, query: str, target: str, folder_mode: str) -> RestoreJob:
    """The unfinished job of this restore (state ``queued``), or a new one."""
    table = schema.restore_jobs
    with vault.engine.begin() as conn:
        found = conn.execute(select(table.c.id).where(
            table.c.actor == actor, table.c.query == query, table.c.target == target,
            table.c.folder_mode == folder_mode, table.c.state.in_(UNFINISHED))
            .order_by(table.c.id.desc()).limit(1)).scalar()
        if found is None:
            result = conn.execute(insert(table).values(
                actor=actor, query=query, target=target, folder_mode=folder_mode,
                state="queued", runs=0, planned=0, handled=0, planned_bytes=0,
                handled_bytes=0, report="", error="", created_at=now(), updated_at=now()))
            assert result.inserted_primary_key is not None
            found = int(result.inserted_primary_key[0])
        else:
            conn.execute(update(table).where(table.c.id == found).values(
                state="queued", updated_at=now()))
    return get(vault, found)


def get(vault: Vault, job_id: int) -> RestoreJob:
    """One job by id; NotFoundError when there is none. A job left ``running`` or
    ``queued`` by a process that is gone reads as ``interrupted``."""
    if not 0 < job_id < 2**63:
        raise NotFoundError(f"there is no restore {job_id}.")
    table = schema.restore_jobs
    with vault.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == job_id)).first()
    if row is None:
        raise NotFoundError(f"there is no restore {job_id}.")
    return _job(vault, row)


def of(vault: Vault, actor: str, limit: int = 100) -> list[RestoreJob]:
    """``actor``'s restores, newest first."""
    table = schema.restore_jobs
    with vault.engine.connect() as conn:
        rows = list(conn.execute(select(table).where(table.c.actor == actor)
                                 .order_by(table.c.id.desc()).limit(limit)))
    return [_job(vault, row) for row in rows]


@contextmanager
def running(vault: Vault, job: RestoreJob) -> Iterator[RestoreJob]:
    """Hold the job's lock for a run and mark it ``running`` (one more run); InputError when
    another process runs it now."""
    fd = _lock_file(vault, job.id)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"restore {job.id} is running in another process.") from None
        table = schema.restore_jobs
        with vault.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == job.id).values(
                state="running", runs=table.c.runs + 1, handled=0, handled_bytes=0,
                error="", updated_at=now()))
        yield get(vault, job.id)
    finally:
        os.close(fd)


def _lock_file(vault: Vault, job_id: int) -> int:
    folder = vault.path / "locks"
    file_modes.make_folder(folder)
    return file_modes.open_new(_lock_path(vault.path, job_id), os.O_WRONLY)


def _lock_path(root: Path, job_id: int) -> Path:
    return root / "locks" / f"restore-{job_id}.lock"


def _held(root: Path, job_id: int) -> bool:
    """Whether a run holds the job's lock now."""
    try:
        fd = os.open(_lock_path(root, job_id), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class Recorder:
    """A run's ``Progress``, kept in the job's row (at most every ``_EVERY_COPIES`` copies or
    ``_EVERY_S`` seconds) and passed on to ``also`` (a face's bar), if any."""

    def __init__(self, vault: Vault, job: RestoreJob, also: Progress | None = None) -> None:
        self.vault = vault
        self.job_id = job.id
        self.also = also
        self._written = (0, time.monotonic())
        self._last = (0, 0)

    def start(self, copies: int, size: int) -> None:
        self._store(planned=copies, planned_bytes=size, handled=0, handled_bytes=0)
        if self.also is not None:
            self.also.start(copies, size)

    def advance(self, copies: int, size: int) -> None:
        self._last = (copies, size)
        last_copies, last_time = self._written
        if copies - last_copies >= _EVERY_COPIES or time.monotonic() - last_time >= _EVERY_S:
            self._store(handled=copies, handled_bytes=size)
            self._written = (copies, time.monotonic())
        if self.also is not None:
            self.also.advance(copies, size)

    def flush(self) -> None:
        """Keep the progress reached (at the end of a run, however it ended)."""
        self._store(handled=self._last[0], handled_bytes=self._last[1])

    def _store(self, **values: int) -> None:
        table = schema.restore_jobs
        with self.vault.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == self.job_id)
                         .values(**values, updated_at=now()))


def ended(vault: Vault, job: RestoreJob, report: RestoreReport, error: str = "") -> RestoreJob:
    """Record how a run ended: ``done``, ``stopped`` (the connection was lost: run it again)
    or ``failed`` (``error``: the login, the certificate, the server), with its report."""
    state = "failed" if error else "stopped" if report.stopped else "done"
    stored = report.to_json()
    stored["failures"] = stored["failures"][:_KEPT_FAILURES]
    table = schema.restore_jobs
    with vault.engine.begin() as conn:
        values: dict[str, Any] = {"state": state, "report": json.dumps(stored),
                                  "error": error, "updated_at": now(),
                                  "finished_at": now() if state == "done" else None}
        conn.execute(update(table).where(table.c.id == job.id).values(**values))
    return get(vault, job.id)


def _job(vault: Vault, row: Any) -> RestoreJob:
    state = row.state
    if state == "running" and not _held(vault.path, row.id):
        state = INTERRUPTED
    return RestoreJob(id=row.id, actor=row.actor, query=row.query, target=row.target,
                      folder_mode=row.folder_mode, state=state, runs=row.runs,
                      planned=row.planned, handled=row.handled,
                      planned_bytes=row.planned_bytes, handled_bytes=row.handled_bytes,
                      report=json.loads(row.report) if row.report else None, error=row.error,
                      created_at=from_epoch(row.created_at),
                      updated_at=from_epoch(row.updated_at),
                      finished_at=from_epoch(row.finished_at))
