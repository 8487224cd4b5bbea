"""Review runs on a schedule while ``serve`` runs: every ``[review] every_minutes`` each
active policy is run (as ``serve:review`` in the audit log), in a worker thread; a run that
fails is logged and tried again at the next interval (a run is one transaction per policy,
so nothing is left half-done)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailvault.capture.services import ServeContext
from mailvault.errors import MailvaultError
from mailvault.review.runs import RunReport, run_all
from mailvault.vault import Vault

ACTOR = "serve:review"
log = logging.getLogger(__name__)


class ReviewService:
    """Runs the review policies every ``every_minutes``."""

    name = "review"

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last: list[RunReport] = []

    async def start(self) -> list[str]:
        """Start the schedule; it listens on nothing."""
        self._task = asyncio.create_task(self._run())
        return []

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                self.last = await loop.run_in_executor(None, run_all, self.vault, ACTOR)
            except MailvaultError as exc:
                log.warning("review run failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(),
                                       self.vault.settings.review.every_minutes * 60)


def review_service(context: ServeContext) -> ReviewService | None:
    """The review schedule, unless ``[review] every_minutes`` is 0."""
    if context.vault.settings.review.every_minutes <= 0:
        return None
    return ReviewService(context.vault)
