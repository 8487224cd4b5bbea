"""What the reader threads share: the source, its endpoint, settings, report and the retry
loop (a dropped connection is reopened with doubling backoff, and reading resumes after the
last message already handed on)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mailvault.config import SyncSettings
from mailvault.errors import SourceError
from mailvault.sources import scope
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.feed import Item
from mailvault.sources.imap import Endpoint
from mailvault.sources.report import Observer, SyncReport
from mailvault.vault import Vault


@dataclass
class ReadContext:
    """Everything a reader needs besides its account."""

    vault: Vault
    spec: SourceSpec
    settings: SyncSettings
    report: SyncReport
    observer: Observer
    stop: threading.Event

    @property
    def endpoint(self) -> Endpoint:
        return scope.endpoint(self.spec, self.settings)


def with_retries(ctx: ReadContext, account: str,
                 attempt_once: Callable[[], Iterator[Item]]) -> Iterator[Item]:
    """Run ``attempt_once`` until it completes; retry it after a retryable SourceError.

    ``attempt_once`` must resume where the previous attempt stopped. The count of attempts
    starts over whenever an attempt handed on at least one message.
    """
    failures = 0
    while True:
        progressed = False
        try:
            for item in attempt_once():
                progressed = True
                yield item
            return
        except SourceError as exc:
            if progressed:
                failures = 0
            if not exc.retryable or failures >= ctx.settings.retries or ctx.stop.is_set():
                raise
            ctx.report.retries.append((account, str(exc)))
            wait = ctx.settings.backoff_s * 2 ** failures
            failures += 1
            if ctx.stop.wait(wait):
                raise
