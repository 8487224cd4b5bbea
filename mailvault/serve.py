"""`mailvault serve`: the long-running services of one vault, started and stopped together.

Every service is built by a factory in ``SERVICES`` from the shared ``ServeContext`` (one
Vault, one spool, one set of counters): adding a service (the IMAP scheduler, say) is one line
here. The faces served beside them (the web application) are given by the caller
(``faces``), so that this module never imports a face. A factory returns None when its
service is not configured. Whatever a service captures goes through the one spool, and one
archiver process (``capture/archiver.py``) drains it into the vault: that process alone holds
the index writer and the pipeline's workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from mailvault.capture.archiver import Archiver
from mailvault.capture.milter import milter_service
from mailvault.capture.services import ServeContext, Service, ServiceFactory
from mailvault.capture.smtp import smtp_service
from mailvault.capture.spool import Spool
from mailvault.capture.status import CaptureStatus, write_status
from mailvault.compliance.lifecycle import lifecycle_service
from mailvault.compliance.storage_history import storage_sampler_service
from mailvault.errors import MailvaultError
from mailvault.gateway.pop3_proxy_service import pop3_proxy_service
from mailvault.gateway.pop3_service import pop3_service
from mailvault.gateway.smtp_proxy import smtp_proxy_service
from mailvault.review.service import review_service
from mailvault.sources.serving import scheduler_service
from mailvault.vault import Vault

STATUS_EVERY_S = 1.0
# At a clean stop the spool is archived first, for up to this long (the rest is replayed).
DRAIN_AT_STOP_S = 60.0


SERVICES: tuple[ServiceFactory, ...] = (
    smtp_service,
    smtp_proxy_service,
    milter_service,
    scheduler_service,
    lifecycle_service,
    review_service,
    pop3_service,
    pop3_proxy_service,
)
# Upkeep that runs beside whatever is served, but is no reason to serve by itself.
ALONGSIDE: tuple[ServiceFactory, ...] = (
    storage_sampler_service,
)


def spool_folder(vault: Vault) -> Path:
    """Where the spool lives: [spool] folder, or VAULT/spool."""
    configured = vault.settings.spool.folder
    return Path(configured) if configured else vault.path / "spool"


async def serve(vault: Vault, stop: asyncio.Event, overrides: dict[str, list[str]] | None = None,
                on_ready: Callable[[list[str]], None] | None = None,
                actor: str = "serve", faces: Sequence[ServiceFactory] = ()) -> None:
    """Run every configured service, and those of ``faces`` (the web application's
    factory), until ``stop`` is set; ``on_ready`` hears what listens."""
    settings = vault.settings.spool
    spool = Spool(spool_folder(vault), settings.segment_mb * 1024 * 1024,
                  settings.max_mb * 1024 * 1024, settings.in_flow_depth,
                  settings.in_flow_delay_s)
    status = CaptureStatus()
    context = ServeContext(vault, spool, status, overrides or {})
    services = [s for s in (factory(context) for factory in (*SERVICES, *faces))
                if s is not None]
    if not services:
        raise MailvaultError("nothing to serve: no SMTP, milter, web or gateway address is "
                             "configured.")
    services += [s for s in (factory(context) for factory in ALONGSIDE) if s is not None]
    # The archiver process holds the index writer from now on; this process only reads.
    vault.index.close()
    spool.start()
    archiver = Archiver(vault.path, spool, status, actor)
    archiver.start()
    started: list[Service] = []
    try:
        listening = []
        for service in services:
            endpoints = await service.start()
            started.append(service)
            for endpoint in endpoints:
                status.listening(endpoint)
            listening += endpoints
        # The status file exists before the server says it listens: `status` run right after
        # already finds it running (and a disk that fills at once still leaves a file to read).
        _publish(vault, status, spool)
        if on_ready is not None:
            on_ready(listening)
        while not stop.is_set():
            archiver.check()
            _publish(vault, status, spool)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY_S)
    finally:
        for service in reversed(started):
            await service.stop()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, archiver.stop, DRAIN_AT_STOP_S)
        await loop.run_in_executor(None, spool.close)
        status.stopped()
        _publish(vault, status, spool)


def _publish(vault: Vault, status: CaptureStatus, spool: Spool) -> None:
    state = spool.state()
    try:
        write_status(vault.path, status.snapshot({
            "depth": state.depth, "bytes": state.bytes, "segments": state.segments,
            "oldest_received": state.oldest_received}))
    except OSError as exc:
        status.error(f"the status file cannot be written: {exc.strerror}.")


def run_until_signalled(vault: Vault, overrides: dict[str, list[str]],
                        on_ready: Callable[[list[str]], None], actor: str,
                        faces: Sequence[ServiceFactory] = ()) -> None:
    """Serve in this thread, with ``faces`` beside the services, until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(vault, stop, overrides, on_ready, actor, faces)

    asyncio.run(main())
