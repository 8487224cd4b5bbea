"""Putting mail in: importing files, and rebuilding the index from what is archived.

Importing is an administrator's job (Permission.SOURCES: files are one more source of mail),
and so is rebuilding the index, which only makes searchable what imports put in. The pipeline
writes an ``ingest`` audit entry per batch with the principal's name, and ``reindex`` writes its
own: these use cases add no second entry.

An import is checked in two steps so that a face can say what is wrong with the paths, the
format or the tier before it opens the vault, and size its progress bar from the bytes to read:
``plan_import`` (no vault), then ``import_files``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.compliance import tiers
from mailvault.errors import StorageFullError
from mailvault.ingest.files import FileOptions, Reader
from mailvault.ingest.pipeline import ARCHIVED, ArchiveReport, Outcome, Pipeline
from mailvault.outlook.source import OutlookTally
from mailvault.search import indexing
from mailvault.search.indexing import IndexProgress
from mailvault.store import catalog
from mailvault.vault import Vault

# An import commits the index every this many seconds (or INDEX_COMMIT_DOCS documents), not
# every second as live mail: its mail then lies in a few large segments instead of one per
# second (on the Enron mailbox, four segments took 0.48 of the raw bytes, one 0.41). What
# a killed import had not committed is indexed by healing when the vault is next opened.
IMPORT_INDEX_COMMIT_S = 30.0

# Told how far an import has got: (messages processed, bytes of input read).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PlannedImport:
    """Paths checked and ready to read, and the tier the new messages go to."""

    reader: Reader
    tier: str

    @property
    def total_bytes(self) -> int:
        """The size of everything named (for a progress bar's total)."""
        return self.reader.scan.bytes_total


@dataclass
class ImportResult:
    """What an import did: the pipeline's counts, what the readers skipped or left out,
    earlier failures settled, and how much of the vault is searchable afterwards."""

    report: ArchiveReport
    seconds: float
    outside_date_range: int
    skipped: list[tuple[str, str]]
    failures_settled: int
    outlook: OutlookTally
    index: IndexProgress
    archived_ids: list[int] = field(default_factory=list)

    @property
    def found_nothing(self) -> bool:
        """Nothing in what was given was a message (not even one outside the date range)."""
        return self.report.processed == 0 and not self.outside_date_range

    def to_json(self) -> dict[str, Any]:
        """The import summary (``import --json``)."""
        summary: dict[str, Any] = dict(self.report.to_json())
        summary["seconds"] = round(self.seconds, 2)
        summary["outside_date_range"] = self.outside_date_range
        summary["skipped"] = [{"item": i, "reason": r} for i, r in self.skipped]
        summary["failures_settled"] = self.failures_settled
        if self.outlook.lines():
            summary["outlook_items"] = self.outlook.to_json()
        return summary


def plan_import(paths: list[Path], *, format: str = "auto", folder: str | None = None,
                since: datetime | None = None, before: datetime | None = None,
                tier: str = "active") -> PlannedImport:
    """Check what an import is given (a tier that is not one, an unknown format, a path that
    does not exist or cannot be read: one sentence each) without touching any vault."""
    target = tiers.check_tier(tier)
    reader = Reader(paths, FileOptions(format=format, folder=folder, since=since,
                                       before=before))
    return PlannedImport(reader, target)


def import_files(vault: Vault, who: Principal, planned: PlannedImport,
                 progress: Progress | None = None) -> ImportResult:
    """Archive everything the planned paths hold, as ``who``; settle earlier failures of
    places read whole this time; move the new messages to the planned tier (a resumable tier
    job). On a full disk: one sentence saying how many messages were committed before it."""
    require(who, Permission.SOURCES)
    reader = planned.reader
    report = ArchiveReport()
    archived: list[int] = []

    def on_batch(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            report.add(outcome)
            if outcome.status == ARCHIVED and outcome.message_id is not None:
                archived.append(outcome.message_id)
        if progress is not None:
            progress(report.processed, reader.scan.bytes_read)

    try:
        with Pipeline(vault, actor=who.name,
                      index_commit_s=IMPORT_INDEX_COMMIT_S) as pipeline:
            # Timed from here, as the rate of archiving: the workers' start is not part of it.
            started = time.monotonic()
            with vault.engine.connect() as conn:
                last_failure = catalog.last_failure_id(conn)
            pipeline.archive_many(reader, on_batch=on_batch)
            with vault.engine.begin() as conn:
                settled = catalog.settle_failures(conn, reader.scan.read_whole, last_failure)
            if planned.tier != "active" and archived:
                job = tiers.create_job(vault, archived, planned.tier,
                                       f"import --tier {planned.tier}", who.name)
                tiers.run_job(vault, job.id)
            seconds = time.monotonic() - started
            index = indexing.index_progress(vault)
    except StorageFullError as exc:
        # Every batch before this one is committed (and comes back as "already there" when
        # the import is run again); the batch that met the full disk left nothing behind.
        raise StorageFullError(
            f"the disk is full: {report.archived} messages were committed before it filled; "
            "run the import again when there is space (what is committed is not imported "
            "twice).") from exc
    return ImportResult(report=report, seconds=seconds,
                        outside_date_range=reader.scan.outside_range,
                        skipped=list(reader.scan.skipped), failures_settled=settled,
                        outlook=reader.scan.outlook, index=index, archived_ids=archived)


def reindex(vault: Vault, who: Principal, progress: Callable[[int], None] | None = None
            ) -> int:
    """Throw the index away and build it again from store and catalog (audited as
    ``reindex``); returns how many documents were written."""
    require(who, Permission.SOURCES)
    return indexing.rebuild(vault, who.name, progress)
