"""Counters of the running capture endpoints, kept in a status file `mailvault status` reads.

The serving process owns the counters and rewrites ``VAULT/serve-status.json`` (atomically:
write, fsync, rename) about once a second, so any other process can show them without talking
to the server. A file older than a few seconds, or naming a process that is gone, means the
server is not running.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mailvault import lifeline
from mailvault.store import catalog, file_modes

STATUS_FILE = "serve-status.json"
STALE_AFTER_S = 10.0


class CaptureStatus:
    """Thread-safe counters: what was accepted and refused (by reason), drained, and failed
    (internal errors: faults of ours, answered 421 or, by the milter, tempfail)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_at = time.time()
        self._accepted: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._drained: Counter[str] = Counter()
        self._internal_errors = 0
        self._last_error: tuple[float, str] | None = None
        self._index_problem = ""
        self._endpoints: list[str] = []
        self._stopped_at: float | None = None

    def listening(self, endpoint: str) -> None:
        """An endpoint is up (shown as, for example, 'smtp 127.0.0.1:2525')."""
        with self._lock:
            self._endpoints.append(endpoint)

    def accepted(self, service: str) -> None:
        """One message was durably spooled and acknowledged."""
        with self._lock:
            self._accepted[service] += 1

    def refused(self, reason: str) -> None:
        """One connection, recipient or message was refused, for ``reason`` (a short label)."""
        with self._lock:
            self._refused[reason] += 1

    def drained(self, status: str, count: int = 1) -> None:
        """The vault committed ``count`` spooled messages as ``status`` (archived, duplicate)."""
        with self._lock:
            self._drained[status] += count

    def internal_error(self, text: str) -> None:
        """A fault of ours made a session answer 421 (or the milter tempfail); ``text`` says
        what (one sentence, kept as the last error)."""
        with self._lock:
            self._internal_errors += 1
            self._last_error = (time.time(), text)

    def stopped(self) -> None:
        """The server stopped cleanly (the file then says so, not just that it went stale)."""
        with self._lock:
            self._stopped_at = time.time()

    def error(self, text: str) -> None:
        """Remember the last error (one sentence)."""
        with self._lock:
            self._last_error = (time.time(), text)

    def index(self, problem: str) -> None:
        """Why the index is behind the vault ('' once the archiver has caught up)."""
        with self._lock:
            self._index_problem = problem

    def snapshot(self, spool: dict[str, Any]) -> dict[str, Any]:
        """Everything as a JSON-ready dict, with the spool's state."""
        with self._lock:
            return {
                "pid": os.getpid(),
                "started_at": self.started_at,
                "updated_at": time.time(),
                "stopped_at": self._stopped_at,
                "endpoints": list(self._endpoints),
                "accepted": dict(self._accepted),
                "refused": dict(self._refused),
                "drained": dict(self._drained),
                "internal_errors": self._internal_errors,
                "spool": spool,
                "index_problem": self._index_problem or None,
                "last_error": ({"at": self._last_error[0], "error": self._last_error[1]}
                               if self._last_error else None),
            }


def write_status(vault_path: Path, data: dict[str, Any]) -> None:
    """Replace the status file atomically."""
    file_modes.write_replacing(vault_path / STATUS_FILE, json.dumps(data).encode(),
                               durable=False)


def read_status(vault_path: Path) -> dict[str, Any] | None:
    """The last status the server wrote, with ``running`` added; None if it never ran."""
    path = vault_path / STATUS_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fresh = time.time() - float(data.get("updated_at", 0)) < STALE_AFTER_S
    # A server whose disk is full cannot rewrite this file: it is still running, and
    # ``stale`` says these figures are as of ``updated_at``.
    data["stale"] = not fresh and bool(catalog.space_problem(vault_path))
    data["running"] = (not data.get("stopped_at") and (fresh or data["stale"])
                       and lifeline.alive(int(data.get("pid", 0))))
    return data

