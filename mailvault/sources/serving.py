"""The scheduler as a ``mailvault serve`` service.

Under ``serve`` the spool's drain is the one writer of the vault, so scheduled syncs do not run
a pipeline of their own: ``SpoolSink`` appends each fetched message to the spool and reports a
batch durable once the spool has fsynced it (promise 3: "or the bytes sit fsynced in the
spool"). Folder state then advances; the drain archives the messages, with the same dedup and
failure records as anywhere else.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING

from mailvault.ingest.pipeline import REFUSED, ArchiveReport, Outcome
from mailvault.records import Incoming, Unreadable
from mailvault.sources import registry
from mailvault.sources.schedule import run_scheduler
from mailvault.sources.sync import SPOOLED
from mailvault.store import catalog

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext
    from mailvault.capture.spool import Spool
    from mailvault.vault import Vault

# Spool appends waited for together (they share the spool's group fsync).
SPOOL_BATCH = 200


class SpoolSink:
    """Hands fetched messages to the spool; ``on_batch`` hears them once fsynced there."""

    batch_size = SPOOL_BATCH

    def __init__(self, vault: Vault, spool: Spool, loop: asyncio.AbstractEventLoop) -> None:
        self.vault = vault
        self.spool = spool
        self.loop = loop

    def archive_many(self, items: Iterable[Incoming | Unreadable],
                     on_batch: Callable[[list[Outcome]], None] | None = None) -> ArchiveReport:
        """Spool every message (Unreadable ones become failure records); batch by batch.

        The report counts only refusals: what is spooled is counted by the drain."""
        report = ArchiveReport()
        iterator = iter(items)
        while batch := list(islice(iterator, self.batch_size)):
            outcomes = self._spool(batch)
            for outcome in outcomes:
                if outcome.status == REFUSED:
                    report.add(outcome)
            if on_batch is not None:
                on_batch(outcomes)
        return report

    def _spool(self, batch: list[Incoming | Unreadable]) -> list[Outcome]:
        waits = [(item, asyncio.run_coroutine_threadsafe(
                     self.spool.store(item.raw, item.provenance), self.loop))
                 for item in batch if isinstance(item, Incoming)]
        outcomes = []
        for item, future in waits:
            future.result()  # StoreError (spool full, I/O) ends the run: nothing advances
            outcomes.append(Outcome(item.provenance, SPOOLED, size=len(item.raw)))
        unreadable = [i for i in batch if isinstance(i, Unreadable)]
        if unreadable:
            with self.vault.engine.begin() as conn:
                for failed in unreadable:
                    catalog.record_failure(conn, failed.provenance, failed.reason)
            outcomes += [Outcome(u.provenance, REFUSED, reason=u.reason) for u in unreadable]
        return outcomes


class SchedulerService:
    """Runs scheduled sources (interval or cron) in a thread while ``serve`` runs."""

    name = "scheduler"

    def __init__(self, context: ServeContext) -> None:
        self.context = context
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self) -> list[str]:
        """Start the scheduler thread; it listens on nothing."""
        sink = SpoolSink(self.context.vault, self.context.spool, asyncio.get_running_loop())
        self._thread = threading.Thread(
            target=run_scheduler, args=(self.context.vault, self._stop, sink, "serve:scheduler"),
            name="source-scheduler", daemon=True)
        self._thread.start()
        return []

    async def stop(self) -> None:
        """Stop after the sync under way has handed on its current batch."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)


def scheduler_service(context: ServeContext) -> SchedulerService | None:
    """The scheduler, if any source has an interval or cron expression."""
    if not any(s.interval or s.cron for s in registry.all_sources(context.vault)):
        return None
    return SchedulerService(context)
