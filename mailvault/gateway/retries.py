"""Mailbox copies left visible by a delivery that failed, remembered so that the client's retry
of the same message stores no second copy of them.

The SMTP endpoint makes a message's mailbox copies visible one after another, after its journal
copy (if any) is in the spool. When one of them cannot be written, the client hears 4xx and
sends the whole message again: the journal copy is deduplicated by the vault (by hash), and
the mailbox copies that were already visible are remembered here, by mailbox and SHA-256 of
the raw message, so the retry passes over those mailboxes. Only copies of failed deliveries
are remembered (a day, at most ``LIMIT`` of them, the oldest forgotten first): the same bytes
delivered twice with success are kept twice, unless a failed delivery of them came first. In
memory only: a retry that comes after ``serve`` restarted stores a second copy.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

WINDOW_S = 24 * 3600.0
LIMIT = 10_000


class RetryWindow:
    """Which (mailbox, message digest) pairs a failed delivery left visible, for a while.
    Shared by the threads that deliver."""

    def __init__(self, seconds: float = WINDOW_S, limit: int = LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._held: OrderedDict[tuple[str, bytes], float] = OrderedDict()

    def remember(self, mailbox_id: str, digest: bytes) -> None:
        """A copy of the message with this digest is visible in the mailbox although its
        delivery failed."""
        with self._lock:
            self._held[(mailbox_id, digest)] = self._clock()
            self._held.move_to_end((mailbox_id, digest))
            while len(self._held) > self._limit:
                self._held.popitem(last=False)

    def held(self, mailbox_id: str, digest: bytes) -> bool:
        """Whether a failed delivery of this message left a copy in the mailbox recently."""
        with self._lock:
            if not self._held:
                return False
            now = self._clock()
            while self._held:
                oldest, since = next(iter(self._held.items()))
                if now - since < self._seconds:
                    break
                del self._held[oldest]
            return (mailbox_id, digest) in self._held
