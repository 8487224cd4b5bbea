"""What an unfinished backup has copied so far (``DIR/backup-progress.jsonl``).

A backup into a folder first turns the earlier manifest into this journal (the sealed volumes
that backup holds) and only then removes the manifest; every sealed volume or object it copies
is added as one line once its copy is fsynced. A backup killed, or stopped by a full disk,
thus leaves a folder with a journal and no manifest: it never passes for a whole backup, and
the next run into the folder keeps every copy the journal names (sealed volumes and objects
never change) instead of copying it again. The manifest, written last, replaces the journal.

A line cut short by a kill is not JSON and is passed over: the copy it would have named is
made again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from mailvault.backup.manifest import FileEntry, disk_full, is_full
from mailvault.store import file_modes

JOURNAL_FILE = "backup-progress.jsonl"


def exists(folder: Path) -> bool:
    """Whether an unfinished backup left its journal in ``folder``."""
    return (folder / JOURNAL_FILE).is_file()


def read(folder: Path) -> dict[str, FileEntry]:
    """The sealed copies the journal names, by path in the backup (none without one)."""
    try:
        text = (folder / JOURNAL_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    entries: dict[str, FileEntry] = {}
    for line in text.splitlines():
        try:
            data = json.loads(line)
            name = str(data.pop("name"))
            entries[name] = FileEntry(**data)
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return entries


def start(folder: Path, entries: dict[str, FileEntry]) -> None:
    """Begin the journal with the copies an earlier backup made (replacing any journal)."""
    _replacing(folder, "".join(_line(name, entry) for name, entry in sorted(entries.items())))


def add(folder: Path, name: str, entry: FileEntry) -> None:
    """Record one more sealed copy, durably (the copy itself is fsynced already)."""
    try:
        fd = os.open(folder / JOURNAL_FILE, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, _line(name, entry).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if is_full(exc):
            raise disk_full(folder) from exc
        raise


def finish(folder: Path) -> None:
    """Remove the journal: the manifest now says what the backup holds."""
    (folder / JOURNAL_FILE).unlink(missing_ok=True)
    file_modes.fsync_folder(folder)


def _replacing(folder: Path, text: str) -> None:
    try:
        file_modes.write_replacing(folder / JOURNAL_FILE, text.encode())
    except OSError as exc:
        if is_full(exc):
            raise disk_full(folder) from exc
        raise


def _line(name: str, entry: FileEntry) -> str:
    return json.dumps({"name": name, **asdict(entry)}, sort_keys=True) + "\n"
