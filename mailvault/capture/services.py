"""What the long-running services of `mailvault serve` share, and what a service is.

Every service (SMTP, milter, the source scheduler, the lifecycle pass, the web application)
is built by a factory from one ``ServeContext``; ``serve.py`` lists the factories and runs
them. The context lives here, beside the spool and counters it holds, so that a capability
building a service never imports the module that runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from mailvault.capture.spool import Spool
from mailvault.capture.status import CaptureStatus
from mailvault.errors import MailvaultError
from mailvault.store import claims

if TYPE_CHECKING:
    from mailvault.vault import Vault


@dataclass
class ServeContext:
    """What every service shares: the vault, the spool, the counters, command-line overrides
    (service name -> listen addresses, replacing the configured ones)."""

    vault: Vault
    spool: Spool
    status: CaptureStatus
    overrides: dict[str, list[str]] = field(default_factory=dict)


class Service(Protocol):
    """A long-running service: ``start`` returns what it listens on, ``stop`` ends it."""

    name: str

    async def start(self) -> list[str]: ...

    async def stop(self) -> None: ...


ServiceFactory = Callable[[ServeContext], Service | None]

Report = TypeVar("Report")
log = logging.getLogger(__name__)
# A node looks this often whether a periodic job is due (another node may have run it).
RECHECK_S = 15.0


class PeriodicService(Generic[Report]):
    """A service that runs one pass of work every period while ``serve`` runs.

    The pass runs in a worker thread (passes read and write the catalog, which blocks). It is
    given a function that says whether ``serve`` is stopping, so a long pass can end at its
    next committed batch. A pass that fails with a MailvaultError is logged and tried again
    at the next period; ``last`` holds the latest pass's report.

    Several serve nodes may share the vault's catalog: a pass runs under the job claim named
    after the service (store/claims.py), taken only when no other node holds it and the last
    pass, on whichever node, ended a period ago; so each node looks every ``RECHECK_S`` (or
    the period, if shorter) and the work runs once a period on one node. A pass whose lease
    is lost (its renewals failed) is told to stop as ``serve`` stopping would.
    """

    def __init__(self, name: str, work: Callable[[Callable[[], bool]], Report],
                 period_s: Callable[[], float], vault: Vault) -> None:
        self.name = name
        self._work = work
        self._period_s = period_s
        self._vault = vault
        self._stop = asyncio.Event()
        self._stopping = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self.last: Report | None = None

    async def start(self) -> list[str]:
        """Start the schedule; it listens on nothing."""
        self._task = asyncio.create_task(self._run())
        return []

    async def stop(self) -> None:
        """Stop after the pass under way (or at its next batch, if it checks)."""
        self._stopping.set()
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                await loop.run_in_executor(None, self._claimed_pass)
            except MailvaultError as exc:
                log.warning("%s pass failed: %s", self.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), min(RECHECK_S, self._period_s()))

    def _claimed_pass(self) -> None:
        lease = claims.hold(self._vault.engine, self._vault.settings.serve, self.name,
                            every_s=self._period_s())
        if lease is None:
            return  # another node runs it, or ran it less than a period ago
        with lease:
            self.last = self._work(lambda: self._stopping.is_set() or lease.lost())
