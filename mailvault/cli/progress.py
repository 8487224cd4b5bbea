"""Progress for long work: a Rich bar on a terminal, plain lines every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mailvault.cli.app import errors

PLAIN_EVERY_S = 5.0


class Meter:
    """Counts messages (or other items: ``unit``, ``short`` in rates) and bytes; shows them
    with rate and ETA (ETA from bytes when known)."""

    def __init__(self, label: str, total_bytes: int | None = None,
                 unit: str = "messages", short: str = "msg") -> None:
        self.label = label
        self.unit = unit
        self.short = short
        self.total_bytes = total_bytes or None
        self.messages = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._interactive = sys.stderr.isatty()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Meter:
        if self._interactive:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn(f"{{task.fields[messages]}} {self.short}s {{task.fields[mb]:.1f}} MB "
                           f"{{task.fields[rate]:.0f}} {self.short}/s"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=errors, transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total_bytes,
                                                 messages=0, mb=0.0, rate=0.0)
        return self

    def update(self, messages: int, done_bytes: int) -> None:
        """Set the running totals (messages processed, input bytes consumed)."""
        self.messages, self.bytes = messages, done_bytes
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = messages / elapsed
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done_bytes, messages=messages,
                                  mb=done_bytes / 1048576, rate=rate)
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            self._last_line = time.monotonic()
            percent = f" {100 * done_bytes / self.total_bytes:.0f}%" if self.total_bytes else ""
            errors.print(f"{self.label}:{percent} {messages} {self.unit}, "
                         f"{done_bytes / 1048576:.1f} MB, {rate:.0f} {self.short}/s",
                         highlight=False)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
