"""One sync of one source: its accounts read in parallel (``[sync] connections``), every
message handed to the pipeline, and each folder's state advanced only in the pipeline's
on_batch callback, i.e. once the batch is fsynced and committed.

Interrupted anywhere, the next run starts after the highest UID that was durable; whatever
was fetched but not committed is fetched again, and dedup by hash + provenance key keeps it
from being stored or recorded twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol

from mailvault.ingest.pipeline import ARCHIVED, DUPLICATE, ArchiveReport, Outcome, Pipeline
from mailvault.records import Incoming, Unreadable
from mailvault.sources import imap_reader, pop3_reader, runs, scope, state
from mailvault.sources.definitions import MAILDROP_KINDS, SourceSpec
from mailvault.sources.feed import Feed, ReaderEnd
from mailvault.sources.reading import ReadContext
from mailvault.sources.report import Observer, Silent, SyncReport
from mailvault.sources.scope import Account
from mailvault.store import audit
from mailvault.vault import Vault

SPOOLED = "spooled"


class Sink(Protocol):
    """Where fetched messages go: the Pipeline, or (under ``serve``) the spool, whose drain
    is the one writer of the vault. ``on_batch`` hears outcomes once they are durable."""

    batch_size: int

    def archive_many(self, items: Iterable[Incoming | Unreadable],
                     on_batch: Callable[[list[Outcome]], None] | None = None
                     ) -> ArchiveReport: ...


def sync(vault: Vault, spec: SourceSpec, pipeline: Sink, actor: str,
         observer: Observer | None = None, stop: threading.Event | None = None) -> SyncReport:
    """Bring in what is new at the source; the run is recorded (see ``mailvault status``)."""
    report = SyncReport(spec.name)
    started = time.monotonic()
    with vault.engine.begin() as conn:
        run_id = runs.start(conn, spec.name)
    status, error = runs.INTERRUPTED, "interrupted"
    try:
        accounts = scope.accounts_of(vault, spec)
        ctx = ReadContext(vault, spec, vault.settings.sync, report, observer or Silent(),
                          stop or threading.Event())
        _read_all(ctx, accounts, pipeline)
        if spec.kind in MAILDROP_KINDS and spec.delete_after_archive:
            _delete_archived(ctx, accounts)
        status = _status(report, len(accounts))
        error = next(iter(report.errors.values()), "")
    except Exception as exc:
        status, error = runs.FAILED, str(exc)
        raise
    finally:
        report.status = status
        report.seconds = time.monotonic() - started
        with vault.engine.begin() as conn:
            runs.finish(conn, run_id, status, report.totals(), error, report.to_json())
            audit.record(conn, actor, "source-sync", {
                "source": spec.name, "status": status, **report.totals(),
                "errors": len(report.errors)})
    return report


def _read_all(ctx: ReadContext, accounts: list[Account], pipeline: Sink) -> None:
    settings = ctx.settings
    feed = Feed(max(settings.fetch_batch, pipeline.batch_size),
                settings.fetch_batch_mb * 1024 * 1024)
    read = pop3_reader.read_account if ctx.spec.kind in MAILDROP_KINDS \
        else imap_reader.read_account

    def on_end(end: ReaderEnd) -> None:
        if end.error is not None:
            ctx.report.errors[end.account] = str(end.error)

    with ThreadPoolExecutor(max(1, min(settings.connections, len(accounts))),
                            thread_name_prefix=f"sync-{ctx.spec.name}") as pool:
        try:
            for account in accounts:
                pool.submit(feed.run_reader, account.address, partial(read, ctx, account))
            pipeline.archive_many(feed.items(len(accounts), on_end),
                                  on_batch=partial(_advance, ctx))
        finally:
            # Readers blocked on a full queue give up once the pipeline is gone.
            feed.stop.set()


def _advance(ctx: ReadContext, outcomes: list[Outcome]) -> None:
    """The batch is durable: move each folder's highest UID (or POP3 UIDLs) forward."""
    spec = ctx.spec
    highest: dict[tuple[str, str, int], int] = {}
    uidls: dict[str, list[str]] = {}
    for outcome in outcomes:
        prov = outcome.provenance
        account, folder = prov.account or "", prov.folder or ""
        report = ctx.report.folder(account, folder)
        if outcome.status == ARCHIVED:
            report.archived += 1
        elif outcome.status == DUPLICATE:
            report.duplicates += 1
        elif outcome.status == SPOOLED:
            report.spooled += 1
        else:
            report.failed += 1
        if prov.uidvalidity is not None and prov.uid is not None:
            key = (account, folder, prov.uidvalidity)
            highest[key] = max(highest.get(key, 0), prov.uid)
        elif prov.item is not None:
            uidls.setdefault(account, []).append(prov.item)
    with ctx.vault.engine.begin() as conn:
        for (account, folder, uidvalidity), uid in highest.items():
            state.advance(conn, spec.name, account, folder, uidvalidity, uid)
        for account, items in uidls.items():
            state.add_seen(conn, spec.name, account, items)
    for account, folder in {(o.provenance.account or "", o.provenance.folder or "")
                            for o in outcomes}:
        ctx.observer.progress(account, folder, ctx.report.folder(account, folder).done)


def _delete_archived(ctx: ReadContext, accounts: list[Account]) -> None:
    for account in accounts:
        if account.address in ctx.report.errors:
            continue
        deleted = pop3_reader.delete_archived(ctx, account)
        ctx.report.folder(account.address, pop3_reader.FOLDER).deleted += deleted


def _status(report: SyncReport, accounts: int) -> str:
    if not report.errors:
        return runs.OK
    return runs.FAILED if len(report.errors) >= accounts else runs.PARTIAL


def sync_all(vault: Vault, specs: list[SourceSpec], actor: str,
             observer: Observer | None = None) -> list[SyncReport]:
    """Sync several sources one after another with one pipeline (the CLI's ``sync``)."""
    reports = []
    with Pipeline(vault, actor=actor) as pipeline:
        for spec in specs:
            reports.append(sync(vault, spec, pipeline, actor, observer))
    return reports
