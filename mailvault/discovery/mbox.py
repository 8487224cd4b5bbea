"""mboxrd files: one per folder, appended message by message, cut back on resume.

An entry is a ``From `` line (envelope sender and date), the message with every line that
matches ``>*From `` given one more ``>``, and an empty line. ``ingest/files.py`` reads that
back to the same bytes, so the file re-imports to the same hashes, with one exception the
format cannot avoid: a message whose last line has no line break gets one (the summary
lists such messages).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from mailvault.store import file_modes

_FROM_LINE = re.compile(rb"(?m)^(>*From )")
_NO_SENDER = "MAILER-DAEMON"


def entry(raw: bytes, sender: str, date: datetime | None) -> tuple[bytes, bool]:
    """An mbox entry for a message, and whether it changes the bytes a reader gets back
    (True when the message does not end with a line break)."""
    words = sender.split()
    token = words[0] if words and words[0].isprintable() else _NO_SENDER
    when = (date or datetime(1970, 1, 1)).strftime("%a %b %d %H:%M:%S %Y")
    head = f"From {token} {when}\n".encode("ascii", "replace")
    quoted = _FROM_LINE.sub(rb">\1", raw)
    if raw.endswith(b"\n"):
        return head + quoted + b"\n", False
    return head + quoted + b"\n\n", True


class MboxFiles:
    """The open mbox files of an export, appended to and flushed at each checkpoint."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: dict[str, BinaryIO] = {}

    def append(self, path: str, data: bytes) -> int:
        """Append an entry to the file at ``path`` (relative); its end offset after."""
        handle = self._open.get(path)
        if handle is None:
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = file_modes.open_new(target, os.O_WRONLY | os.O_APPEND)
            handle = self._open[path] = os.fdopen(fd, "ab")
        handle.write(data)
        return handle.tell()

    def flush(self) -> None:
        """Hand everything written to the kernel (a killed process loses nothing of it)."""
        for handle in self._open.values():
            handle.flush()

    def close(self) -> None:
        for handle in self._open.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        self._open.clear()


def cut_back(root: Path, ends: dict[str, int]) -> None:
    """Before resuming: cut every mbox file to the end of its last checkpointed entry
    (files with none are removed), so entries written after the checkpoint go once."""
    folder = root / "mbox"
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.mbox")):
        relative = path.relative_to(root).as_posix()
        end = ends.get(relative)
        if end is None:
            path.unlink()
        elif path.stat().st_size != end:
            os.truncate(path, end)
