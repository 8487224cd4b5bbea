"""The manifests of an export: manifest.csv, manifest.json and the DAT load file, one row
per document (message or attachment).

Each message's rows are made where its documents are built (a worker process), as bytes;
the export process appends them, batch by batch in message-id order, to the three files
under temporary names (``<name>.part``), and records their ends with each checkpoint. A
resumed export cuts them back to the checkpoint, as it does the mbox files; the finished
export renames them to their names.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mailvault.discovery import loadfile
from mailvault.store import file_modes

MANIFEST_CSV = "manifest.csv"
MANIFEST_JSON = "manifest.json"
LOAD_FILE = "loadfile.dat"
NAMES = (MANIFEST_CSV, MANIFEST_JSON, LOAD_FILE)
PART = ".part"
COLUMNS = ("control", "type", "id", "sha256", "size", "date", "from", "to", "cc",
           "envelope_to", "subject", "folder", "source", "custodian", "filename",
           "content_type", "attachments", "parent", "children", "path", "text_path")
_JSON_START = b"["
_JSON_END = b"\n]\n"
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Rows:
    """One message's manifest rows: its documents' CSV and DAT rows, and their JSON
    objects (one each; the separators are the file's)."""

    csv: bytes
    json: list[bytes]
    dat: bytes


def rows(documents: Sequence[dict[str, Any]]) -> Rows:
    """The manifest rows of a message's documents, in order."""
    return Rows(b"".join(_csv_row([_cell(d.get(c)) for c in COLUMNS]) for d in documents),
                [json.dumps(d, ensure_ascii=False).encode() for d in documents],
                b"".join(loadfile.row(d) for d in documents))


class Parts:
    """The three manifest files being written (``<name>.part``), appended to in order."""

    def __init__(self, root: Path, ends: dict[str, int] | None) -> None:
        """Open them to go on from ``ends`` (the last checkpoint's; None: start anew)."""
        self.root = root
        self._handles: dict[str, BinaryIO] = {}
        for name in NAMES:
            path = root / (name + PART)
            if ends is None:
                fd = file_modes.open_new(path, os.O_WRONLY | os.O_TRUNC)
            else:
                if not path.exists() and (root / name).exists():
                    # Killed after the files were named, before the job was marked done.
                    os.replace(root / name, path)
                fd = file_modes.open_new(path, os.O_WRONLY)
                os.ftruncate(fd, ends[name])
                os.lseek(fd, ends[name], os.SEEK_SET)
            self._handles[name] = os.fdopen(fd, "wb")
        if ends is None:
            self._handles[MANIFEST_CSV].write(_csv_row(COLUMNS))
            self._handles[MANIFEST_JSON].write(_JSON_START)
            self._handles[LOAD_FILE].write(loadfile.header())
            self._first = True
        else:
            self._first = ends[MANIFEST_JSON] == len(_JSON_START)

    def add(self, message: Rows) -> None:
        """Append a message's rows."""
        self._handles[MANIFEST_CSV].write(message.csv)
        self._handles[LOAD_FILE].write(message.dat)
        for document in message.json:
            self._handles[MANIFEST_JSON].write((b"\n" if self._first else b",\n") + document)
            self._first = False

    def ends(self) -> dict[str, int]:
        """Hand what was appended to the kernel; where each file ends now."""
        found = {}
        for name, handle in self._handles.items():
            handle.flush()
            found[name] = handle.tell()
        return found

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def finish(self) -> list[tuple[str, str, int]]:
        """End and close the files, rename them to their names; (name, SHA-256, size) each."""
        self._handles[MANIFEST_JSON].write(_JSON_END)
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())
        self.close()
        done = []
        for name in NAMES:
            os.replace(self.root / (name + PART), self.root / name)
            done.append((name, *file_digest(self.root / name)))
        return done


def file_digest(path: Path) -> tuple[str, int]:
    """A file's SHA-256 and size, read a chunk at a time."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(f"{v['name']} ({v['sha256']})" if isinstance(v, dict) else str(v)
                         for v in value)
    return str(value)


def _csv_row(values: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode("utf-8", "surrogatepass")
