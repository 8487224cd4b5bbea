"""PST/OST and MSG files as a source for ``mailvault import``: items become Incoming messages.

Mail items become the RFC 5322 message a mail client would show; appointments, tasks,
contacts, distribution lists, notes and journal entries become messages carrying iCalendar or
vCard; any other item class (free/busy data, rules, views) is counted as skipped by its class.
An item that cannot be read becomes an Unreadable naming its folder and node id, so the
pipeline records the failure and the rest of the file goes on.

A PST is read in a process of its own, which hands over items in small batches through a
bounded queue: reading and rebuilding items costs about as much CPU as archiving them, and
the importing process is the pipeline's busiest, so the two run side by side. Memory stays
bounded by the queue (a few batches of at most ``BATCH_ITEMS`` items or ``BATCH_BYTES``).
"""

from __future__ import annotations

import multiprocessing
import queue
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from multiprocessing.queues import Queue
from pathlib import Path

from mailvault.errors import InputError
from mailvault.ingest.provenance import Incoming, Provenance, Unreadable
from mailvault.outlook.forms import CONVERTED_KINDS, build_form
from mailvault.outlook.item import EMAIL, Item
from mailvault.outlook.mime import build_message
from mailvault.outlook.msg import MsgFormatError, read_msg
from mailvault.outlook.ndb import PstFormatError
from mailvault.outlook.pst import Folder, PstReader
from mailvault.outlook.tags import (
    PR_FLAG_STATUS,
    PR_LAST_VERB_EXECUTED,
    PR_MESSAGE_DELIVERY_TIME,
    PR_MESSAGE_FLAGS,
)

# What a damaged item can raise while it is read or rebuilt: caught per item, never per file.
ITEM_ERRORS = (PstFormatError, MsgFormatError, struct.error, IndexError, KeyError, ValueError,
               UnicodeError, LookupError, OverflowError, RecursionError)
_MSGFLAG_READ = 0x1
_MSGFLAG_UNSENT = 0x8
_FLAGGED = 2
_REPLIED = (102, 103)  # EXCHIVERB_REPLYTOSENDER, EXCHIVERB_REPLYTOALL
# A batch from the reading process closes at this many items or bytes; QUEUE_BATCHES batches
# may wait for the importer.
BATCH_ITEMS = 64
BATCH_BYTES = 8 << 20
QUEUE_BATCHES = 4
# How often the importer, waiting for a batch, checks that the reading process is alive.
_ALIVE_CHECK_S = 1.0


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
    if item.kind == EMAIL:
        return build_message(item)
    if item.kind in CONVERTED_KINDS:
        return build_form(item)
    return None


@dataclass
class _Batch:
    """What the reading process hands over at a time."""

    items: list[Incoming | Unreadable] = field(default_factory=list)
    tally: OutlookTally = field(default_factory=OutlookTally)
    progress: int = 0
    size: int = 0


@dataclass(frozen=True)
class _Refused:
    """The file cannot be read at all: the sentence for InputError."""

    reason: str


_DONE = "done"


def pst_items(path: Path, folder: str | None, tally: OutlookTally,
              advance: Callable[[int], None]) -> Iterator[Incoming | Unreadable]:
    """Every item of a PST/OST file, folder by folder, read in a process of its own;
    ``advance`` hears bytes of progress. InputError when the file is no PST at all."""
    context = multiprocessing.get_context("forkserver")
    batches: Queue[_Batch | _Refused | str] = context.Queue(QUEUE_BATCHES)
    reading = context.Process(target=_read_pst, args=(path, folder, batches), daemon=True,
                              name="pst-reader")
    reading.start()
    try:
        while True:
            try:
                batch = batches.get(timeout=_ALIVE_CHECK_S)
            except queue.Empty:
                if reading.is_alive():
                    continue
                tally.unreadable += 1
                yield Unreadable(_provenance(path, folder or "", None),
                                 f"{path} could not be read to the end: the reading process "
                                 f"stopped (exit code {reading.exitcode})")
                return
            if batch == _DONE:
                return
            if isinstance(batch, _Refused):
                raise InputError(batch.reason)
            assert isinstance(batch, _Batch)
            tally.add(batch.tally)
            advance(batch.progress)
            yield from batch.items
    finally:
        if reading.is_alive():
            reading.terminate()
        reading.join()
        batches.close()


def _read_pst(path: Path, folder: str | None, out: Queue[_Batch | _Refused | str]) -> None:
    """The reading process: every item of the file, in batches, then ``_DONE``."""
    tally = OutlookTally()
    batch = _Batch()

    def advance(count: int) -> None:
        batch.progress += count

    def hand_over() -> None:
        nonlocal batch
        batch.tally.add(tally)
        tally.archived.clear()
        tally.skipped.clear()
        tally.unreadable = 0
        out.put(batch)
        batch = _Batch()

    try:
        for item in _read_items(path, folder, tally, advance):
            batch.items.append(item)
            batch.size += len(item.raw) if isinstance(item, Incoming) else 0
            if len(batch.items) >= BATCH_ITEMS or batch.size >= BATCH_BYTES:
                hand_over()
    except InputError as exc:
        out.put(_Refused(str(exc)))
        return
    hand_over()
    out.put(_DONE)


def _read_items(path: Path, folder: str | None, tally: OutlookTally,
                advance: Callable[[int], None]) -> Iterator[Incoming | Unreadable]:
    try:
        reader = PstReader(path)
    except PstFormatError as exc:
        raise InputError(f"{path} cannot be imported: {exc}.") from exc
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}.") from exc
    with reader:
        try:
            yield from _pst_folders(reader, path, folder, tally, advance)
        except OSError as exc:
            # The disk, not the format: what was read is archived, the rest is a failure.
            tally.unreadable += 1
            yield Unreadable(_provenance(path, folder or "", None),
                             f"{path} could not be read to the end: {exc.strerror or exc}")


def _pst_folders(reader: PstReader, path: Path, folder: str | None, tally: OutlookTally,
                 advance: Callable[[int], None]) -> Iterator[Incoming | Unreadable]:
    size = path.stat().st_size
    folders = list(reader.folders())
    total = sum(len(_ids(reader, f)) for f in folders if isinstance(f, Folder)) or 1
    for found in folders:
        if not isinstance(found, Folder):
            tally.unreadable += 1
            yield Unreadable(_provenance(path, folder or found[0], None),
                             f"folder {found[0]}: {found[1]}")
            continue
        name = folder or found.label
        try:
            ids = reader.item_ids(found)
        except ITEM_ERRORS as exc:
            tally.unreadable += 1
            yield Unreadable(_provenance(path, name, None),
                             f"the item list of folder {found.label or '/'} cannot be "
                             f"read: {exc}")
            continue
        for nid in ids:
            advance(size // total)
            yield from _one(tally, _provenance(path, name, str(nid)),
                            partial(reader.item, nid),
                            f"item {nid} in folder {found.label or '/'}")


def _ids(reader: PstReader, folder: Folder) -> list[int]:
    try:
        return reader.item_ids(folder)
    except ITEM_ERRORS:
        return []


def msg_items(path: Path, folder: str, tally: OutlookTally) -> Iterator[Incoming | Unreadable]:
    """The item of one .msg file (an Unreadable when the file is damaged)."""
    yield from _one(tally, Provenance(kind="msg", source=str(path), folder=folder,
                                      item=path.name),
                    lambda: read_msg(path), str(path))


def _one(tally: OutlookTally, prov: Provenance, read: Callable[[], Item],
         label: str) -> Iterator[Incoming | Unreadable]:
    try:
        item = read()
        raw = convert(item)
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
                                extra=(("message_class", item.message_class),)))


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
