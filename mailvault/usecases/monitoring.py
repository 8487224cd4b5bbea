"""Watching the archive: status, stats, verify, the recorded failures, and retrying one.

Looking (status, stats, the failure list) needs Permission.MONITOR and is not audited: it
shows counts, states and the names of files and sources, never mail content or what anyone
searched for, and ``status`` must work on a full disk, where nothing can be written. ``verify``
is audited by the capability (a ``verify`` entry with its result).

Retrying a failure brings mail in, as an import or a sync does, so it needs
Permission.SOURCES; it is audited as ``failure-retry`` (what was retried, and how it ended),
besides the pipeline's own ``ingest`` entry. What a retry means depends on the failure's kind:

    index            the message is indexed again (here, or by a running ``serve`` that holds
                     the index writer); one no longer in the archive settles its failure
    eml, mbox, msg   the file the failure names is read again (the whole file for an mbox),
                     filed under the folder it was recorded with, so nothing is archived twice
    imap, pop3       the one message is fetched again from its source (the IMAP UID while its
                     folder keeps the same UIDVALIDITY; the POP3 UIDL while it is in the drop)

Other kinds are refused with one sentence saying why (``RETRY_REFUSALS``). A retry that fails
again records a new failure, and the one retried is marked resolved in its favour, so the
list shows each problem once.

Under ``serve`` the archiver process is the vault's one writer, so a face inside ``serve``
(the web) passes ``sink``: what is read again is handed to the spool (``SpoolSink``), as a
scheduled sync's mail is, and the outcome is "queued"; the drain archives it and the pipeline
marks the failure resolved then (``catalog.resolve_failures``, by the recorded provenance).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.capture.status import read_status
from mailvault.compliance import inventory
from mailvault.compliance import verify as verifying
from mailvault.compliance.inventory import VaultStats
from mailvault.compliance.verify import VerifyReport
from mailvault.errors import InputError, NotFoundError
from mailvault.ingest.files import FileOptions, Reader
from mailvault.ingest.pipeline import ArchiveReport, Outcome, Pipeline
from mailvault.records import Incoming, Provenance, Unreadable
from mailvault.search import indexing
from mailvault.search.indexing import IndexProgress as IndexProgress  # re-exported for the faces
from mailvault.sources import overview, registry
from mailvault.sources.refetch import refetch
from mailvault.sources.sync import SPOOLED, Sink
from mailvault.store import audit, catalog
from mailvault.vault import Vault

# What `status` lists of the failures (the count covers them all).
STATUS_FAILURES = 100

FILE_KINDS = ("eml", "mbox", "msg")
SOURCE_KINDS = ("imap", "pop3")
_REIMPORT = ("import the {what} again with 'mailvault import' and the options it was imported "
             "with: {why}.")
RETRY_REFUSALS = {
    "maildir": _REIMPORT.format(what="Maildir tree", why="one folder of it read alone would "
                                "be filed under another folder name"),
    "folder": _REIMPORT.format(what="folder", why="a folder read alone would be filed under "
                               "another folder name"),
    "pst": _REIMPORT.format(what="PST or OST file", why="an item cannot be read alone, and "
                            "the file's folder names depend on those options"),
    "smtp": "a message refused at capture is not kept: its sender must send it again.",
    "milter": "a message refused at capture is not kept: its sender must send it again.",
    "gateway": "a gateway message that failed stays in its mailbox, never deleted; a damaged "
               "one cannot be read by anyone, so its sender must send it again.",
}

SETTLED = "settled"
QUEUED = "queued"
FAILED_AGAIN = "failed again"


@dataclass(frozen=True)
class Failure:
    """Something that could not be archived (or indexed), as recorded: ``source`` and
    ``item`` as people see them, ``provenance`` exact."""

    id: int
    at: int
    kind: str
    source: str
    item: str | None
    reason: str
    resolved: bool
    provenance: Provenance

    @property
    def recorded_at(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    @property
    def retry_refusal(self) -> str | None:
        """Why this failure cannot be retried, or None when it can."""
        if self.kind == catalog.INDEX_FAILURE or self.kind in FILE_KINDS + SOURCE_KINDS:
            return None
        return RETRY_REFUSALS.get(self.kind, f"mailvault cannot reach a {self.kind} item "
                                             "again.")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "kind": self.kind, "source": self.source,
                "item": self.item, "reason": self.reason, "resolved": self.resolved,
                "retryable": self.retry_refusal is None}


@dataclass(frozen=True)
class VaultStatus:
    """What the vault is doing: how much is searchable (and why not all), the capture
    endpoint's counters, each source's runs, and the newest recorded failures."""

    index: IndexProgress
    index_problem: str
    endpoint: dict[str, Any] | None
    sources: list[dict[str, Any]]
    failures: list[Failure]
    failure_count: int
    # One sentence when the catalog cannot be written now (its disk is full), else "".
    catalog_problem: str = ""

    def to_json(self) -> dict[str, Any]:
        """``status --json``."""
        return {"messages": self.index.messages,
                "catalog_problem": self.catalog_problem or None,
                "index": {**self.index.to_json(), "problem": self.index_problem or None},
                "endpoint": self.endpoint,
                "failures": [{"at": f.at, "kind": f.kind, "source": f.source, "item": f.item,
                              "reason": f.reason} for f in self.failures],
                "failure_count": self.failure_count, "sources": self.sources}


@dataclass(frozen=True)
class RetryResult:
    """How a retry ended: ``outcome`` is settled, queued or failed again, and ``sentence``
    says what happened in words for a person."""

    failure: Failure
    outcome: str
    sentence: str
    archived: int = 0
    duplicates: int = 0
    newer_failure: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"failure": self.failure.id, "outcome": self.outcome, "sentence": self.sentence,
                "archived": self.archived, "duplicates": self.duplicates,
                "newer_failure": self.newer_failure}


def status(vault: Vault, who: Principal) -> VaultStatus:
    """Index progress, the capture endpoint, the sources and the newest failures (writes
    nothing, so it answers on a full disk too)."""
    require(who, Permission.MONITOR)
    index = indexing.index_progress(vault)
    with vault.engine.connect() as conn:
        rows = catalog.failures(conn)
    endpoint = read_status(vault.path)
    sources = overview.describe(vault)
    problem = index.problem
    if endpoint and endpoint["running"] and endpoint.get("index_problem"):
        problem = str(endpoint["index_problem"])  # the running archiver's own words
    return VaultStatus(index=index, index_problem=problem, endpoint=endpoint, sources=sources,
                       failures=[_failure(r) for r in rows[:STATUS_FAILURES]],
                       failure_count=len(rows),
                       catalog_problem=catalog.space_problem(vault.path))


def stats(vault: Vault, who: Principal) -> VaultStats:
    """Messages, raw and stored bytes, index bytes per tier, and what dedup saved."""
    require(who, Permission.MONITOR)
    return inventory.collect(vault)


def verify(vault: Vault, who: Principal, progress: Callable[[int], None] | None = None
           ) -> VerifyReport:
    """Re-read every blob and check every hash, the index, retention dates and the audit
    log (audited as ``verify`` with the result)."""
    require(who, Permission.MONITOR)
    return verifying.verify(vault, who.name, progress)


def failures(vault: Vault, who: Principal, *, include_resolved: bool = False) -> list[Failure]:
    """Recorded failures, newest first (only the unresolved ones unless asked)."""
    require(who, Permission.MONITOR)
    with vault.engine.connect() as conn:
        rows = catalog.failures(conn, unresolved_only=not include_resolved)
    return [_failure(r) for r in rows]


def retry_failure(vault: Vault, who: Principal, failure_id: int, sink: Sink | None = None
                  ) -> RetryResult:
    """Try again what failure ``failure_id`` records (see the module's table of kinds);
    audited as ``failure-retry``. With ``sink`` (under ``serve``: the spool), what is read
    again goes there instead of through a pipeline of this process (called from a worker
    thread, never the event loop's)."""
    require(who, Permission.SOURCES)
    with vault.engine.connect() as conn:
        row = catalog.failure(conn, failure_id)
    if row is None:
        raise NotFoundError(f"there is no failure {failure_id} (see 'mailvault failure list').")
    failure = _failure(row)
    if failure.resolved:
        raise InputError(f"failure {failure_id} is settled already.")
    refusal = failure.retry_refusal
    if refusal is not None:
        raise InputError(f"failure {failure_id} cannot be retried: {refusal}")
    if failure.kind == catalog.INDEX_FAILURE:
        result = _reindex(vault, failure)
    else:
        result = _archive_again(vault, who, failure, sink)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "failure-retry", {
            "failure": failure.id, "kind": failure.kind, "source": failure.source,
            "item": failure.item, "outcome": result.outcome,
            "newer_failure": result.newer_failure})
    return result


def _reindex(vault: Vault, failure: Failure) -> RetryResult:
    """Queue the message for indexing and heal now when this process may write the index."""
    digest = failure.provenance.item or ""
    with vault.engine.begin() as conn:
        try:
            row = catalog.resolve(conn, digest)
        except NotFoundError:
            catalog.resolve_failure(conn, failure.id)
            return RetryResult(failure, SETTLED, f"the message ({digest[:16]}) is no longer in "
                               "the archive: there is nothing left to index.")
        catalog.queue_reindex(conn, [row.id])
    vault.heal_index()
    with vault.engine.connect() as conn:
        settled = _resolved(conn, failure.id)
    if settled:
        return RetryResult(failure, SETTLED, f"message {row.id} is searchable now.")
    if vault.index_problem:
        return RetryResult(failure, FAILED_AGAIN, f"message {row.id} is queued for indexing, "
                           f"but the index cannot be written now: {vault.index_problem}")
    if vault.index.writer_busy():
        return RetryResult(failure, QUEUED, f"message {row.id} is queued for indexing: the "
                           "process that holds the index writer (a running serve) indexes it.")
    return RetryResult(failure, FAILED_AGAIN, f"the index refused message {row.id} again "
                       "(the failure keeps its reason).")


def _archive_again(vault: Vault, who: Principal, failure: Failure, sink: Sink | None
                   ) -> RetryResult:
    """Read the failure's file, or fetch its message from its source, through the pipeline
    (or into ``sink``)."""
    items: Iterable[Incoming | Unreadable]
    places: list[Provenance] = []
    recorded = failure.provenance
    if failure.kind in SOURCE_KINDS:
        items = [refetch(vault, registry.get(vault, recorded.source), recorded)]
    else:
        reader = Reader([Path(recorded.source)],
                        FileOptions(format=failure.kind, folder=recorded.folder))
        items, places = reader, reader.scan.read_whole
    report = ArchiveReport()
    spooled = 0

    def on_batch(outcomes: list[Outcome]) -> None:
        nonlocal spooled
        for outcome in outcomes:
            if outcome.status == SPOOLED:
                spooled += 1
            else:
                report.add(outcome)

    with vault.engine.connect() as conn:
        last_failure = catalog.last_failure_id(conn)
    if sink is not None:
        sink.archive_many(items, on_batch=on_batch)
    else:
        with Pipeline(vault, actor=who.name) as pipeline:
            pipeline.archive_many(items, on_batch=on_batch)
    with vault.engine.begin() as conn:
        catalog.settle_failures(conn, places, last_failure)
        newer = catalog.newer_failure(conn, failure.id)
        if newer is not None:
            catalog.resolve_failure(conn, failure.id)
        settled = _resolved(conn, failure.id)
    counts = {"archived": report.archived, "duplicates": report.duplicates}
    if newer is not None:
        reason = report.refusals[0][1] if report.refusals else "see the newer failure"
        return RetryResult(failure, FAILED_AGAIN, f"it failed again ({reason}); failure "
                           f"{newer} records it now.", newer_failure=newer, **counts)
    if settled:
        return RetryResult(failure, SETTLED, f"archived {report.archived}, already there "
                           f"{report.duplicates}: the failure is settled.", **counts)
    if spooled:
        return RetryResult(failure, QUEUED, f"{spooled} message(s) read again and handed to "
                           "the running serve's archiver: the failure is settled once it "
                           "has archived them.", **counts)
    return RetryResult(failure, FAILED_AGAIN, "what the failure names was read again, but "
                       "it was not found in it: the failure stays.", **counts)


def _resolved(conn: Connection, failure_id: int) -> bool:
    row = catalog.failure(conn, failure_id)
    return row is not None and bool(row["resolved"])


def _failure(row: dict[str, Any]) -> Failure:
    return Failure(id=row["id"], at=row["at"], kind=row["kind"], source=row["source"],
                   item=row["item"], reason=row["reason"], resolved=bool(row["resolved"]),
                   provenance=Provenance.from_json(json.loads(row["provenance"])))
