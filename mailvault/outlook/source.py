"""PST/OST and MSG files as a source for ``mailvault import``: items become Incoming messages.

Mail items become the RFC 5322 message a mail client would show; appointments, tasks,
contacts, distribution lists, notes and journal entries become messages carrying iCalendar or
vCard; any other item class (free/busy data, rules, views) is counted as skipped by its class.
An item that cannot be read becomes an Unreadable naming its folder and node id, so the
pipeline records the failure and the rest of the file goes on.

A PST is read in a process of its own: reading and rebuilding items costs about as much CPU
as the importing process's own work, so the two run side by side. The importer lists the
folders through it, then asks for the items in chunks, a bounded number ahead, so memory
stays bounded; a reading process that dies is a recorded failure, never a hang.
"""

from __future__ import annotations

import os
import struct
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from mailvault import lifeline
from mailvault.errors import InputError
from mailvault.message import KnownMessage
from mailvault.outlook.forms import CONVERTED_KINDS, build_form
from mailvault.outlook.item import EMAIL, Item
from mailvault.outlook.mime import build_known_message
from mailvault.outlook.msg import MsgFormatError, read_msg
from mailvault.outlook.ndb import PstFormatError
from mailvault.outlook.pst import Folder, PstReader
from mailvault.outlook.tags import (
    PR_FLAG_STATUS,
    PR_LAST_VERB_EXECUTED,
    PR_MESSAGE_DELIVERY_TIME,
    PR_MESSAGE_FLAGS,
)
from mailvault.records import Incoming, Provenance, Unreadable

# What a damaged item can raise while it is read or rebuilt: caught per item, never per file.
ITEM_ERRORS = (PstFormatError, MsgFormatError, struct.error, IndexError, KeyError, ValueError,
               UnicodeError, LookupError, OverflowError, RecursionError)
_MSGFLAG_READ = 0x1
_MSGFLAG_UNSENT = 0x8
_FLAGGED = 2
_REPLIED = (102, 103)  # EXCHIVERB_REPLYTOSENDER, EXCHIVERB_REPLYTOALL
# The reading process reads items in chunks of CHUNK_ITEMS, CHUNKS_AHEAD chunks ahead of the
# importer (about as many items as one pipeline batch takes at a time).
CHUNK_ITEMS = 64
CHUNKS_AHEAD = 16


@dataclass
class OutlookTally:
    """What the Outlook files of an import held, by kind: archived, skipped, unreadable."""

    archived: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0

    def lines(self) -> list[str]:
        """The summary lines an import prints ([] when no Outlook file was read)."""
        out = []
        if self.archived:
            out.append("Outlook items converted: " + _counts(self.archived))
        if self.skipped:
            out.append("Outlook items skipped (no standard form): " + _counts(self.skipped))
        if self.unreadable:
            out.append(f"Outlook items unreadable (recorded as failures): {self.unreadable}")
        return out

    def add(self, other: OutlookTally) -> None:
        """Count in another tally (a batch's, from the reading process)."""
        self.archived.update(other.archived)
        self.skipped.update(other.skipped)
        self.unreadable += other.unreadable

    def to_json(self) -> dict[str, object]:
        """The tally for ``import --json``."""
        return {"converted": dict(sorted(self.archived.items())),
                "skipped": dict(sorted(self.skipped.items())), "unreadable": self.unreadable}


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counter.items()))


def convert(item: Item) -> bytes | None:
    """The message bytes for an item, or None when its kind has no standard form."""
    return converted(item)[0]


def converted(item: Item) -> tuple[bytes | None, KnownMessage | None]:
    """convert(), and for mail what the pipeline need not parse again (KnownMessage)."""
    if item.kind == EMAIL:
        return build_known_message(item)
    if item.kind in CONVERTED_KINDS:
        return build_form(item), None
    return None, None


@dataclass(frozen=True)
class _FolderItems:
    """One folder of the file, as the reading process lists it."""

    name: str  # the archive folder its items go to
    label: str  # its path in the file, for messages
    nids: list[int]


@dataclass(frozen=True)
class _Chunk:
    """What reading some items of a folder gave: messages and failures, and their tally."""

    items: list[Incoming | Unreadable]
    tally: OutlookTally


def pst_items(path: Path, folder: str | None, tally: OutlookTally,
              advance: Callable[[int], None],
              read_whole: Callable[[Provenance], None] | None = None,
              ) -> Iterator[Incoming | Unreadable]:
    """Every item of a PST/OST file, folder by folder, read in a process of its own;
    ``advance`` hears bytes of progress, ``read_whole`` of each folder listed and of the file
    once read to the end. InputError when the file is no PST at all."""
    # The reading process ends with this one, even when it is killed (lifeline.py).
    reading = ProcessPoolExecutor(1, mp_context=lifeline.worker_context(),
                                  initializer=lifeline.bind_to, initargs=(os.getpid(),))
    try:
        try:
            plan = reading.submit(_plan, path, folder).result()
        except BrokenProcessPool as exc:
            raise InputError(f"{path} cannot be read: the reading process stopped.") from exc
        total = sum(len(e.nids) for e in plan if isinstance(e, _FolderItems)) or 1
        step = path.stat().st_size // total
        listed = [_provenance(path, e.name, None) for e in plan if isinstance(e, _FolderItems)]
        for entry in _read_ahead(reading, path, plan):
            if isinstance(entry, Unreadable):
                tally.unreadable += 1
                yield entry
                continue
            count, future = entry
            try:
                chunk = future.result()
            except (BrokenProcessPool, InputError) as exc:
                # The reading process died, or the file went away or became unreadable.
                tally.unreadable += 1
                yield _unfinished(path, folder, str(exc) if isinstance(exc, InputError)
                                  else "the reading process stopped")
                return
            tally.add(chunk.tally)
            advance(step * count)
            yield from chunk.items
        if read_whole is not None:
            for place in [*listed, _provenance(path, folder or "", None)]:
                read_whole(place)
    finally:
        # An import that stops early: what is queued is dropped, the chunk in hand finishes.
        reading.shutdown(wait=True, cancel_futures=True)


def _read_ahead(reading: ProcessPoolExecutor, path: Path, plan: list[_FolderItems | Unreadable]
                ) -> Iterator[Unreadable | tuple[int, Future[_Chunk]]]:
    """The plan's failures, and its chunks as futures submitted CHUNKS_AHEAD in advance."""
    queued: deque[Unreadable | tuple[int, Future[_Chunk]]] = deque()
    submitted = 0
    for work in _work(plan):
        if isinstance(work, Unreadable):
            queued.append(work)
        else:
            found, nids = work
            queued.append((len(nids), _submit(reading, path, found, nids)))
            submitted += 1
        while submitted >= CHUNKS_AHEAD:
            entry = queued.popleft()
            submitted -= not isinstance(entry, Unreadable)
            yield entry
    yield from queued


def _submit(reading: ProcessPoolExecutor, path: Path, found: _FolderItems,
            nids: list[int]) -> Future[_Chunk]:
    """Ask for a chunk; once the reading process has died, a future holding that failure."""
    try:
        return reading.submit(_read_chunk, path, found.name, found.label, nids)
    except BrokenProcessPool as exc:
        failed: Future[_Chunk] = Future()
        failed.set_exception(exc)
        return failed


def _unfinished(path: Path, folder: str | None, reason: str) -> Unreadable:
    """The failure standing for the rest of a file that could not be read to the end."""
    return Unreadable(_provenance(path, folder or "", None),
                      f"{path} could not be read to the end: {reason}")


def _work(plan: list[_FolderItems | Unreadable]) -> Iterator[
        Unreadable | tuple[_FolderItems, list[int]]]:
    """The plan as failures and chunks of item ids, in the file's order."""
    for entry in plan:
        if isinstance(entry, Unreadable):
            yield entry
            continue
        for start in range(0, len(entry.nids), CHUNK_ITEMS):
            yield entry, entry.nids[start:start + CHUNK_ITEMS]


def _open(path: Path) -> PstReader:
    try:
        return PstReader(path)
    except PstFormatError as exc:
        raise InputError(f"{path} cannot be imported: {exc}.") from exc
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}.") from exc


def _plan(path: Path, folder: str | None) -> list[_FolderItems | Unreadable]:
    """In the reading process: the file's folders and their item ids, and the folders that
    cannot be listed."""
    plan: list[_FolderItems | Unreadable] = []
    with _open(path) as reader:
        try:
            for found in reader.folders():
                if not isinstance(found, Folder):
                    plan.append(Unreadable(_provenance(path, folder or found[0], None),
                                           f"folder {found[0]}: {found[1]}"))
                    continue
                name = folder or found.label
                try:
                    nids = reader.item_ids(found)
                except ITEM_ERRORS as exc:
                    plan.append(Unreadable(_provenance(path, name, None),
                                           f"the item list of folder {found.label or '/'} "
                                           f"cannot be read: {exc}"))
                    continue
                plan.append(_FolderItems(name, found.label or "/", nids))
        except OSError as exc:
            # The disk, not the format: what was listed is read, the rest is a failure.
            plan.append(_unfinished(path, folder, str(exc.strerror or exc)))
    return plan


class _HeldFile:
    """In the reading process: the file, opened once for all its chunks. Opening it per chunk
    read the name map and the store again and emptied the B-tree page cache each time. The
    reading process serves one import and ends with it; a file replaced under the same name,
    or another file, closes the one held and is opened anew."""

    def __init__(self) -> None:
        self._identity: tuple[str, int, int, int, int] | None = None
        self._reader: PstReader | None = None

    def get(self, path: Path) -> PstReader:
        """The open reader of ``path`` (InputError when it cannot be opened)."""
        try:
            found = path.stat()
        except OSError as exc:
            raise InputError(f"{path} cannot be read: {exc.strerror}.") from exc
        identity = (str(path), found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)
        if self._reader is None or identity != self._identity:
            self.close()
            self._reader = _open(path)
            self._identity = identity
        return self._reader

    def close(self) -> None:
        """Close the file held, if any."""
        if self._reader is not None:
            self._reader.close()
        self._reader, self._identity = None, None


# One per process: only the reading process calls _read_chunk.
_HELD = _HeldFile()


def _read_chunk(path: Path, name: str, label: str, nids: list[int]) -> _Chunk:
    """In the reading process: some items of one folder, as messages or failures."""
    tally = OutlookTally()
    items: list[Incoming | Unreadable] = []
    reader = _HELD.get(path)
    for nid in nids:
        items.extend(_one(tally, _provenance(path, name, str(nid)),
                          partial(reader.item, nid), f"item {nid} in folder {label}"))
    return _Chunk(items, tally)


def msg_items(path: Path, folder: str, tally: OutlookTally) -> Iterator[Incoming | Unreadable]:
    """The item of one .msg file (an Unreadable when the file is damaged)."""
    yield from _one(tally, Provenance(kind="msg", source=str(path), folder=folder,
                                      item=path.name),
                    lambda: read_msg(path), str(path))


def _one(tally: OutlookTally, prov: Provenance, read: Callable[[], Item],
         label: str) -> Iterator[Incoming | Unreadable]:
    try:
        item = read()
        raw, known = converted(item)
    except ITEM_ERRORS as exc:
        tally.unreadable += 1
        yield Unreadable(prov, f"{label} cannot be read: {exc}")
        return
    except OSError as exc:
        tally.unreadable += 1
        yield Unreadable(prov, f"{label} cannot be read: {exc.strerror or exc}")
        return
    if raw is None:
        tally.skipped[item.message_class or "(no class)"] += 1
        return
    tally.archived[item.kind] += 1
    yield Incoming(raw, replace(prov, internal_date=item.props.time(PR_MESSAGE_DELIVERY_TIME),
                                flags=item_flags(item),
                                extra=(("message_class", item.message_class),)), known)


def item_flags(item: Item) -> tuple[str, ...]:
    """The IMAP flags an item's state amounts to (read, unsent, flagged, replied to)."""
    props = item.props
    state = props.integer(PR_MESSAGE_FLAGS) or 0
    flags = []
    if props.integer(PR_LAST_VERB_EXECUTED) in _REPLIED:
        flags.append("\\Answered")
    if state & _MSGFLAG_UNSENT:
        flags.append("\\Draft")
    if props.integer(PR_FLAG_STATUS) == _FLAGGED:
        flags.append("\\Flagged")
    if state & _MSGFLAG_READ:
        flags.append("\\Seen")
    return tuple(flags)


def _provenance(path: Path, folder: str, item: str | None) -> Provenance:
    return Provenance(kind="pst", source=str(path), folder=folder, item=item)
