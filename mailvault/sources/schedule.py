"""When each source syncs on its own: an interval ("15m", "2h", "1d", seconds) or a cron
expression ("*/30 * * * *", UTC), and the loop that runs what is due until told to stop.

Each sync runs under its source's job claim (``sync:NAME``, store/claims.py), so several
serve nodes sharing one catalog sync a source on one node at a time, once each time it is due.

``run_scheduler`` needs somewhere to put messages: a Pipeline of its own when it runs alone,
or the spool when it runs inside ``mailvault serve`` (see ``scheduler_service``), where the
spool's drain is the one writer of the vault.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from croniter import croniter

from mailvault.errors import MailvaultError
from mailvault.ingest.pipeline import Pipeline
from mailvault.sources import registry, runs
from mailvault.sources.cadence import interval_seconds
from mailvault.sources.sync import Sink, sync
from mailvault.store import claims

if TYPE_CHECKING:
    from mailvault.sources.definitions import SourceSpec
    from mailvault.vault import Vault

# The loop looks again at least this often (sources may be added while it runs).
IDLE_CHECK_S = 60.0


def next_run(spec: SourceSpec, last_started: datetime | None, now: datetime) -> datetime | None:
    """When the source is due next (None when it has no schedule); never run -> now."""
    if spec.interval:
        if last_started is None:
            return now
        return last_started + timedelta(seconds=interval_seconds(spec.interval))
    if spec.cron:
        base = last_started or now - timedelta(seconds=1)
        found: datetime = croniter(spec.cron, base).get_next(datetime)
        return found
    return None


def last_started(vault: Vault, name: str) -> datetime | None:
    """When the source's newest run started."""
    with vault.engine.connect() as conn:
        run = runs.last(conn, name)
    return None if run is None else datetime.fromtimestamp(run.started_at, UTC)


def run_due(vault: Vault, sink: Sink, actor: str, stop: threading.Event) -> float:
    """Sync every source that is due; returns seconds until the next one is."""
    wait = IDLE_CHECK_S
    for spec in registry.all_sources(vault):
        if stop.is_set():
            break
        now = datetime.now(UTC)
        due = next_run(spec, last_started(vault, spec.name), now)
        if due is None:
            continue
        if due <= now:
            _sync_if_ours(vault, spec, sink, actor, stop)
            due = next_run(spec, last_started(vault, spec.name), datetime.now(UTC))
            if due is None:
                continue
        wait = min(wait, max(0.0, (due - datetime.now(UTC)).total_seconds()))
    return wait


def _sync_if_ours(vault: Vault, spec: SourceSpec, sink: Sink, actor: str,
                  stop: threading.Event) -> None:
    """Sync the source under its job claim (``sync:NAME``): a node sharing the catalog that
    holds it syncs it now, and one that synced it since it was found due leaves it."""
    lease = claims.hold(vault.engine, vault.settings.serve, f"sync:{spec.name}")
    if lease is None:
        return
    with lease:
        due = next_run(spec, last_started(vault, spec.name), datetime.now(UTC))
        if due is None or due > datetime.now(UTC):
            return
        # A failure is recorded in the run (status shows it); the other sources still run.
        with suppress(MailvaultError):
            sync(vault, spec, sink, actor, stop=stop)


def run_scheduler(vault: Vault, stop_event: threading.Event, sink: Sink | None = None,
                  actor: str = "scheduler") -> None:
    """Run each scheduled source when due until ``stop_event`` is set (blocks)."""
    if sink is not None:
        _loop(vault, stop_event, sink, actor)
        return
    with Pipeline(vault, actor=actor) as pipeline:
        _loop(vault, stop_event, pipeline, actor)


def _loop(vault: Vault, stop: threading.Event, sink: Sink, actor: str) -> None:
    while not stop.is_set():
        stop.wait(run_due(vault, sink, actor, stop))
