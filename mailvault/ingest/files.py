"""Mail files on disk: EML files and folders of them, mbox files, Maildir trees.

Readers stream: an mbox is read line by line, never whole, so a 20 GB file costs no more
memory than its largest message. Each message becomes an ``Incoming`` whose provenance names
the file and the place in it, so importing the same files again is recognised.

mbox variants: mboxo and mboxrd are read the same way. A message starts at a line beginning
``From `` that follows an empty line (or starts the file); one ``>`` is removed from lines
that match ``>+From `` (the mboxrd rule, which is also right for the mboxo escaping of
``From `` lines); the empty line that separates messages is not part of either message.
mboxcl/mboxcl2 (``Content-Length``-delimited) files are read by the same rule, which is
right unless a body holds an unescaped ``From `` line after an empty line.

An ``.eml`` file is always one message, taken whole (a leading ``From `` line included).
Archive folders: a folder given to import is named by its name, its subfolders by their path
below it, an mbox file by its name without the suffix (one mbox is one mail folder), a
Maildir folder by its path in the Maildir tree.

Symbolic links: the paths a person names are taken as they resolve (a link to a Maildir is
where they keep it), but a link found inside what is imported is never followed, neither to
a file nor to a folder: it could lead out of the tree (``new/etc -> /etc/passwd``) or round
in a loop (``.Loop -> .``). Each such link is refused once, with one sentence naming it, and
recorded as a failure of the folder it lies in (settled when a later import reads that
folder whole). Files inside the tree are opened with ``O_NOFOLLOW``, so a file replaced by a
link meanwhile is not read either.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from mailvault.errors import InputError
from mailvault.fsnames import shown
from mailvault.message import parse_date
from mailvault.outlook.msg import OLE_MAGIC, is_msg
from mailvault.outlook.ndb import MAGIC as PST_MAGIC
from mailvault.outlook.source import OutlookTally, msg_items, pst_items
from mailvault.records import Incoming, Provenance, Unreadable

FORMATS = ("auto", "eml", "mbox", "maildir", "pst", "msg")
MAILDIR_SUBDIRS = ("cur", "new")
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]{1,76}:")
_QUOTED_FROM = re.compile(rb"(?m)^>(>*From )")
# "From " starts an mbox unless a colon follows (then it is an obsolete-syntax header line,
# "From  : John Doe <jdoe@example>", as RFC 5322 section 4.5.1 still allows).
_MBOX_START = re.compile(rb"From (?![ \t]*:)")
_DATE_HEADER = re.compile(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_SNIFF_BYTES = 4096
# What IMAP servers keep in a Maildir folder beside cur/ and new/ (never mail).
_SERVER_FILES = ("dovecot", "courierimap", "maildirsize", "maildirfolder", "subscriptions")


@dataclass
class FileScan:
    """What a file import read besides messages: skipped files and date-range skips."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    outside_range: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    outlook: OutlookTally = field(default_factory=OutlookTally)
    # Places (folders listed, files read to the end), as provenance without an item: failures
    # recorded for one of them as a whole in an earlier import are settled by this one.
    read_whole: list[Provenance] = field(default_factory=list)

    def advance(self, size: int) -> None:
        """Count bytes of input as read (for the progress bar)."""
        self.bytes_read += size


@dataclass(frozen=True)
class FileOptions:
    """The options of ``mailvault import`` that shape what the readers yield."""

    format: str = "auto"
    folder: str | None = None
    since: datetime | None = None
    before: datetime | None = None


class Reader:
    """Walks import paths and yields every message in them, format by format."""

    def __init__(self, paths: list[Path], options: FileOptions) -> None:
        if options.format not in FORMATS:
            raise InputError(f"unknown format {options.format!r}: use one of {', '.join(FORMATS)}.")
        self.paths = [p.expanduser() for p in paths]
        self.options = options
        self.scan = FileScan()
        for path in self.paths:
            if not path.exists():
                raise InputError(f"{path} does not exist.")
            if not os.access(path, os.R_OK):
                raise InputError(f"{path} cannot be read: permission denied.")
        self.scan.bytes_total = sum(_size_of(p) for p in self.paths)

    def __iter__(self) -> Iterator[Incoming | Unreadable]:
        for path in self.paths:
            for item in self._path(path.resolve()):
                if isinstance(item, Incoming) and not self._in_range(item.raw):
                    self.scan.outside_range += 1
                    continue
                yield item

    def _path(self, path: Path) -> Iterator[Incoming | Unreadable]:
        fmt = self.options.format
        if path.is_dir():
            if fmt in ("auto", "maildir") and is_maildir(path):
                yield from self._maildir_tree(path)
            elif fmt == "maildir":
                raise InputError(f"{path} is not a Maildir (it has no cur/ and new/ folders).")
            else:
                yield from self._folder(path, path, _folder_name(path))
            return
        kind = fmt if fmt != "auto" else sniff(path)
        if kind is None:
            raise InputError(f"{path} is not a mail file (neither a message nor an mbox).")
        if kind == "empty":
            raise InputError(f"{path} is empty.")
        # An mbox file is a folder of its own (Inbox, Sent): its name is the archive folder.
        folder = path.stem if kind == "mbox" else _folder_name(path.parent)
        yield from self._file(path, kind, self.options.folder or folder)

    def _file(self, path: Path, kind: str, folder: str) -> Iterator[Incoming | Unreadable]:
        if kind == "mbox":
            yield from self._mbox(path, folder)
        elif kind in ("eml", "empty"):
            yield self._eml(path, folder, item=str(path))
        elif kind == "pst":
            yield from pst_items(path, self.options.folder, self.scan.outlook, self.scan.advance,
                                 self.scan.read_whole.append)
        elif kind == "msg":
            self.scan.advance(_size_of(path))
            yield from msg_items(path, folder, self.scan.outlook)
        else:
            raise InputError(f"{path}: the {kind} format is not supported.")

    def _folder(self, root: Path, folder_path: Path, folder: str) -> Iterator[
            Incoming | Unreadable]:
        """A plain folder: each file a message or an mbox; subfolders become subfolders."""
        try:
            entries = sorted(folder_path.iterdir())
        except OSError as exc:
            yield Unreadable(self._prov("folder", folder_path, folder, None),
                             f"the folder cannot be read: {exc.strerror}")
            return
        self.scan.read_whole.append(self._prov("folder", folder_path, folder, None))
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                yield self._link_refused(entry, "folder", folder_path, folder)
                continue
            sub_folder = self.options.folder or f"{folder}/{entry.name}"
            if entry.is_dir():
                if is_maildir(entry):
                    yield from self._maildir_tree(entry, parent=folder)
                else:
                    yield from self._folder(root, entry, sub_folder)
                continue
            try:
                kind = self.options.format if self.options.format != "auto" else sniff(entry)
            except InputError as exc:
                yield self._unreadable_file(entry, self.options.folder or folder, exc)
                continue
            if kind is None:
                self.scan.skipped.append((shown(str(entry)), "not a mail file"))
                self.scan.bytes_read += _size_of(entry)
                continue
            file_folder = f"{folder}/{entry.stem}" if kind == "mbox" else folder
            yield from self._file(entry, kind, self.options.folder or file_folder)

    def _maildir_tree(self, root: Path, parent: str | None = None) -> Iterator[
            Incoming | Unreadable]:
        """A Maildir and every Maildir below it (nested folders or Maildir++ dot-folders)."""
        base = _folder_name(root) if parent is None else f"{parent}/{root.name}"
        root_folder = self.options.folder or base
        links: list[Path] = []
        for maildir, relative in _maildirs(root, links):
            folder = self.options.folder or (base if not relative else f"{base}/{relative}")
            if not os.access(maildir, os.R_OK | os.X_OK):
                yield Unreadable(self._prov("maildir", maildir, folder, None),
                                 "the folder cannot be read: Permission denied")
                continue
            self.scan.read_whole.append(self._prov("maildir", maildir, folder, None))
            for sub in MAILDIR_SUBDIRS:
                directory = maildir / sub
                if directory.is_symlink():
                    yield self._link_refused(directory, "maildir", maildir, folder)
                    continue
                try:
                    # scandir knows links from the directory entry, without a stat per file.
                    with os.scandir(directory) as listing:
                        found = {e.name: e.is_symlink() for e in listing}
                    names = sorted(found)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    yield Unreadable(self._prov("maildir", directory, folder, None),
                                     f"the folder cannot be read: {exc.strerror}")
                    continue
                self.scan.read_whole.append(self._prov("maildir", directory, folder, None))
                for name in names:
                    if name.startswith("."):
                        continue
                    if found[name]:
                        yield self._link_refused(directory / name, "maildir", directory, folder)
                        continue
                    # The part before ':2,' is the message's unique name; flags change.
                    unique = name.split(":2,")[0].split("!2,")[0]
                    yield self._eml(directory / name, folder,
                                    item=str(Path(relative or ".") / unique), kind="maildir",
                                    source=root)
            yield from self._loose_files(maildir, folder)
        # Links to folders, found while walking the tree (links to files are refused where
        # the files are read).
        for link in links:
            yield self._link_refused(link, "maildir", root, root_folder)

    def _loose_files(self, maildir: Path, folder: str) -> Iterator[Incoming | Unreadable]:
        """Files lying in a Maildir folder itself, beside cur/ and new/. Mail that a tool left
        there is archived (nothing given to an archive is silently left out); other files
        are reported as skipped; empty marker files and the bookkeeping files IMAP servers
        keep there (Dovecot's index and uidlist, Courier's, Maildir++ quota) are passed over."""
        try:
            # A link to a folder is refused by the walk over the tree (_maildirs).
            entries = sorted(e for e in maildir.iterdir()
                             if not e.name.startswith((".", *_SERVER_FILES))
                             and (e.is_file() if not e.is_symlink() else not e.is_dir()))
        except OSError as exc:
            yield Unreadable(self._prov("maildir", maildir, folder, None),
                             f"the folder cannot be read: {exc.strerror}")
            return
        for entry in entries:
            if entry.is_symlink():
                yield self._link_refused(entry, "maildir", maildir, folder)
                continue
            try:
                kind = sniff(entry)
            except InputError as exc:
                yield self._unreadable_file(entry, folder, exc)
                continue
            if kind == "empty":
                continue
            if kind is None:
                self.scan.skipped.append((shown(str(entry)), "not a mail file"))
                continue
            yield from self._file(entry, kind, folder)

    def _link_refused(self, link: Path, kind: str, place: Path, folder: str) -> Unreadable:
        """A symbolic link inside the tree: refused, as a failure of the folder it lies in
        (``place``, listed whole in this run), so a later import that finds the link gone
        settles it."""
        try:
            target = os.readlink(link)
        except OSError:
            target = "?"
        return Unreadable(self._prov(kind, place, folder, None),
                          f"{link} is a symbolic link (to {target}): links inside an imported "
                          "folder are not followed.")

    def _unreadable_file(self, path: Path, folder: str, error: InputError) -> Unreadable:
        """One file in a folder that cannot be read: a failure of its own (the same item
        key as when it is read, so a later successful import resolves it), not the end of
        the whole import."""
        return Unreadable(self._prov("eml", path, folder, str(path)), str(error))

    def _eml(self, path: Path, folder: str, item: str, kind: str = "eml",
             source: Path | None = None) -> Incoming | Unreadable:
        prov = self._prov(kind, source or path, folder, item)
        try:
            with _open_in_tree(path) as handle:
                raw = handle.read()
        except OSError as exc:
            return Unreadable(prov, f"{path} cannot be read: {exc.strerror}")
        self.scan.bytes_read += len(raw)
        return Incoming(raw, prov)

    def _mbox(self, path: Path, folder: str) -> Iterator[Incoming | Unreadable]:
        try:
            handle = _open_in_tree(path)
        except OSError as exc:
            yield Unreadable(self._prov("mbox", path, folder, None),
                             f"{path} cannot be read: {exc.strerror}")
            return
        try:
            for start, end, raw in split_mbox(handle):
                self.scan.bytes_read += end - start
                yield Incoming(raw, self._prov("mbox", path, folder, str(start)))
            self.scan.read_whole.append(self._prov("mbox", path, folder, None))
        except OSError as exc:
            yield Unreadable(self._prov("mbox", path, folder, None),
                             f"{path} could not be read to the end: {exc.strerror}")
        finally:
            handle.close()

    def _prov(self, kind: str, source: Path, folder: str, item: str | None) -> Provenance:
        return Provenance(kind=kind, source=str(source), folder=folder, item=item)

    def _in_range(self, raw: bytes) -> bool:
        since, before = self.options.since, self.options.before
        if since is None and before is None:
            return True
        date = header_date(raw)
        if date is None:
            return True  # undated mail is kept rather than silently left out
        return (since is None or date >= since) and (before is None or date < before)


def split_mbox(handle: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[tuple[int, int, bytes]]:
    """(start offset, end offset, message bytes) for each message of an open mbox file.

    Reads in chunks and finds separators with bytes.find (a Python loop over lines costs
    more than everything else an import does per message); the buffer is compacted only
    when more is read, so each byte is copied a bounded number of times.
    """
    reader = _Chunks(handle, chunk_size)
    pos = 0
    while not reader.buffer.startswith(b"From ", pos):
        # Text before the first From line is not a message (and not an mbox).
        first = _find_separator(reader.buffer, pos)
        if first is not None:
            pos = first + 1
        elif not reader.more(pos):
            return
        else:
            pos = 0
    while True:
        line_end = reader.buffer.find(b"\n", pos)
        while line_end < 0:
            if not reader.more(pos):
                return
            pos = 0
            line_end = reader.buffer.find(b"\n")
        start = reader.base + pos
        body_at = line_end + 1
        scan_at = line_end
        while (separator := _find_separator(reader.buffer, scan_at)) is None:
            keep_from = pos
            if not reader.more(keep_from):
                break
            shift = keep_from
            pos, body_at = 0, body_at - shift
            scan_at = max(body_at, len(reader.buffer) - len(reader.last) - 8)
        end = separator + 1 if separator is not None else len(reader.buffer)
        yield start, reader.base + end, _mbox_message(reader.buffer[body_at:end])
        if separator is None:
            return
        pos = end


class _Chunks:
    """A growing window on a file: ``buffer`` starts at file offset ``base``."""

    def __init__(self, handle: BinaryIO, chunk_size: int) -> None:
        self.handle = handle
        self.chunk_size = chunk_size
        self.last = handle.read(chunk_size)
        self.buffer = self.last
        self.base = 0

    def more(self, keep_from: int) -> bool:
        """Drop the buffer before ``keep_from`` and append the next chunk; False at the end."""
        self.last = self.handle.read(self.chunk_size)
        if not self.last:
            return False
        self.base += keep_from
        self.buffer = self.buffer[keep_from:] + self.last
        return True


def _find_separator(buffer: bytes, at: int) -> int | None:
    """Index of the newline that ends the empty line before a ``From `` line, or None."""
    while True:
        hit = buffer.find(b"\nFrom ", at)
        if hit < 0:
            return None
        if hit >= 1 and (buffer[hit - 1] == 10 or (buffer[hit - 1] == 13 and hit >= 2
                                                   and buffer[hit - 2] == 10)):
            return hit
        at = hit + 1


def _mbox_message(data: bytes) -> bytes:
    """The message of one mbox entry: the separating empty line dropped, >From unquoted."""
    if data.endswith(b"\n\r\n"):  # a CRLF empty line, after a CRLF or an LF line
        data = data[:-2]
    elif data.endswith(b"\n\n"):
        data = data[:-1]
    elif data in (b"\n", b"\r\n"):
        data = b""
    if b">From " in data:
        data = _QUOTED_FROM.sub(rb"\1", data)
    return data


def sniff(path: Path) -> str | None:
    """Guess a file's format: 'mbox', 'eml', 'pst', 'msg', 'empty', or None for a file that
    is not mail.

    A ``.eml`` file is a message however broken it is (it is archived with its defects);
    other files count as messages when a header line appears among their first lines.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}.") from exc
    if not head.strip():
        return "empty"
    if path.suffix.lower() == ".eml":
        return "eml"
    # Outlook files by their magic bytes; a .pst/.ost without them goes to the PST reader,
    # which says in one sentence what is wrong with it.
    if head.startswith(PST_MAGIC) or path.suffix.lower() in (".pst", ".ost"):
        return "pst"
    if head.startswith(OLE_MAGIC) and is_msg(path):
        return "msg"
    if _MBOX_START.match(head):
        return "mbox"
    if b"\x00" in head:
        return None
    lines = head.lstrip().splitlines()[:10]
    if any(_HEADER_LINE.match(line.lstrip()) for line in lines):
        return "eml"
    return None


def header_date(raw: bytes) -> datetime | None:
    """The Date header of raw message bytes, read without parsing the message."""
    end = raw.find(b"\n\n")
    end2 = raw.find(b"\r\n\r\n")
    cut = min(x for x in (end, end2, len(raw)) if x >= 0)
    match = _DATE_HEADER.search(raw, 0, cut)
    if not match:
        return None
    return parse_date(match.group(1).decode("ascii", "replace"))


def is_maildir(path: Path) -> bool:
    """A folder with cur/ or new/ inside (tmp/ alone does not make a Maildir). A folder that
    cannot be looked into is not one: reading it as a folder then reports why it failed."""
    try:
        return any((path / sub).is_dir() for sub in MAILDIR_SUBDIRS)
    except OSError:
        return False


def _open_in_tree(path: Path) -> BinaryIO:
    """A file inside an imported tree, opened for reading without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    return os.fdopen(fd, "rb")


def _maildirs(root: Path, links: list[Path]) -> Iterator[tuple[Path, str]]:
    """(maildir folder, folder name relative to root) for root and every Maildir below it.
    Links to folders are not entered (os.walk does not follow them) but put in ``links``."""
    yield root, ""
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        for name in list(dirnames):
            if name in ("cur", "new", "tmp"):
                dirnames.remove(name)
                continue
            child = here / name
            if child.is_symlink():
                links.append(child)
                dirnames.remove(name)
                continue
            # A folder that cannot be entered is yielded too, so that it is reported.
            if is_maildir(child) or not os.access(child, os.R_OK | os.X_OK):
                relative = child.relative_to(root).as_posix()
                if name.startswith(".") and here == root:
                    relative = name[1:].replace(".", "/")  # Maildir++ ".Lists.linux"
                yield child, relative


def _folder_name(path: Path) -> str:
    return path.name or str(path)


def _size_of(path: Path) -> int:
    """Bytes of a file, or of the files of a tree (links inside it not followed)."""
    try:
        if path.is_file():
            return path.stat().st_size
    except OSError:
        return 0
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                info = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
