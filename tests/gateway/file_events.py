"""What a piece of code opens and lists under a folder, from Python's audit events: a seam that
needs no change to the code watched. A test asks that a cost does not grow with a mailbox by
counting the files it touches, never by timing it.

Audit hooks cannot be removed, so one hook is installed for the test process and records only
while a ``watching`` block is open, and only what the thread that opened it does.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FileEvents:
    """The files opened (with how: "read" or "write") and the folders listed under a folder."""

    folder: Path
    thread: int
    opened: list[tuple[Path, str]] = field(default_factory=list)
    listed: list[Path] = field(default_factory=list)

    def reads_under(self, sub: Path) -> list[Path]:
        """The files under ``sub`` opened for reading."""
        return [path for path, how in self.opened if how == "read" and path.is_relative_to(sub)]

    def listings_under(self, sub: Path) -> list[Path]:
        """The folders at or under ``sub`` that were listed."""
        return [path for path in self.listed if path.is_relative_to(sub)]


_watchers: list[FileEvents] = []
_installed = threading.Lock()
_hooked = False


def _how(mode: Any, flags: Any) -> str:
    if isinstance(mode, str):
        return "write" if set(mode) & set("wax+") else "read"
    if isinstance(flags, int):
        return "write" if flags & (os.O_WRONLY | os.O_RDWR) else "read"
    return "read"


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _watchers or event not in ("open", "os.scandir", "os.listdir"):
        return
    if not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return  # an open by file descriptor, or a listing of the current folder
    path = Path(os.fsdecode(args[0])).absolute()
    me = threading.get_ident()
    for watcher in _watchers:
        if watcher.thread != me or not path.is_relative_to(watcher.folder):
            continue
        if event == "open":
            watcher.opened.append((path, _how(args[1], args[2])))
        else:
            watcher.listed.append(path)


@contextmanager
def watching(folder: Path) -> Iterator[FileEvents]:
    """Record what this thread opens and lists under ``folder`` until the block ends."""
    global _hooked
    with _installed:
        if not _hooked:
            sys.addaudithook(_hook)
            _hooked = True
    events = FileEvents(folder.absolute(), threading.get_ident())
    _watchers.append(events)
    try:
        yield events
    finally:
        _watchers.remove(events)
