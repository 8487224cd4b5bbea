"""What a sync did, folder by folder: counts, notes (new, renamed, gone, rescanned), errors."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


class Observer(Protocol):
    """Hears progress (the CLI draws a bar per account and folder from it)."""

    def folder(self, account: str, folder: str, total: int) -> None:
        """A folder's reading starts: ``total`` messages to bring in."""

    def progress(self, account: str, folder: str, done: int) -> None:
        """``done`` of the folder's messages are durable in the vault."""


class Silent:
    """An observer that shows nothing (the scheduler's)."""

    def folder(self, account: str, folder: str, total: int) -> None:
        return None

    def progress(self, account: str, folder: str, done: int) -> None:
        return None


@dataclass
class FolderReport:
    """One folder of one account in one run."""

    account: str
    folder: str
    uidvalidity: int | None = None
    to_fetch: int = 0
    archived: int = 0
    duplicates: int = 0
    failed: int = 0
    spooled: int = 0
    deleted: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.archived + self.duplicates + self.failed + self.spooled

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "folder": self.folder,
                "uidvalidity": self.uidvalidity, "to_fetch": self.to_fetch,
                "archived": self.archived, "duplicates": self.duplicates,
                "failed": self.failed, "spooled": self.spooled, "deleted": self.deleted,
                "notes": self.notes}


@dataclass
class SyncReport:
    """A whole run of one source."""

    source: str
    folders: dict[tuple[str, str], FolderReport] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    retries: list[tuple[str, str]] = field(default_factory=list)
    status: str = ""
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def folder(self, account: str, name: str) -> FolderReport:
        """The folder's report, made on first use (reader threads share this object)."""
        with self._lock:
            key = (account, name)
            if key not in self.folders:
                self.folders[key] = FolderReport(account, name)
            return self.folders[key]

    def totals(self) -> dict[str, int]:
        """Counts over every folder."""
        return {name: sum(getattr(f, name) for f in self.folders.values())
                for name in ("archived", "duplicates", "failed", "spooled", "deleted")}

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "seconds": round(self.seconds, 2),
                **self.totals(),
                "folders": [f.to_json() for f in self.folders.values()],
                "errors": [{"account": a, "error": e} for a, e in self.errors.items()],
                "skipped": [{"account": a, "folder": f, "reason": r}
                            for a, f, r in self.skipped],
                "retries": [{"account": a, "error": e} for a, e in self.retries]}
