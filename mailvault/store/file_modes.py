"""Owner-only files and folders: everything a vault holds is readable by its owner alone.

The catalog holds every subject, address and envelope and the audit log's search queries; the
index and the status file say as much. Three layers keep them from other local users:

- what mailvault writes itself is created 0600 (folders 0700), whatever the umask;
- commands that open a vault run under umask 0o077 (``owner_only_umask``), so what
  third-party code creates meanwhile (SQLite's -wal/-shm, Tantivy's segment files) and the
  processes started then (the archiver, the pipeline's workers) are owner-only too;
- opening a vault strips group and other bits from whatever is in its folders
  (``tighten``), so a vault made by an older version, or by a library caller with a looser
  umask, is closed the next time it is opened, and the vault folder itself is 0700, which
  keeps every path inside out of reach even before that.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailvault import lifeline

OWNER_ONLY_UMASK = 0o077
FOLDER_MODE = 0o700
FILE_MODE = 0o600
# A sealed volume: its bytes never change again.
READ_ONLY_MODE = stat.S_IRUSR
_GROUP_OR_OTHER = stat.S_IRWXG | stat.S_IRWXO


@contextmanager
def owner_only_umask() -> Iterator[None]:
    """Run the block (and the processes it starts) with umask 0o077; the umask before is
    restored after, so a caller in the same process (a test) keeps its own."""
    previous = os.umask(OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def make_folder(path: Path) -> None:
    """Create ``path`` 0700, and each missing parent 0700 too (every folder mailvault makes is
    owner-only); ``path`` is made 0700 even if it existed looser. Parents that existed are
    left as they are: they belong to whoever chose where the vault lives."""
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        folder.chmod(FOLDER_MODE)
    if stat.S_IMODE(path.stat().st_mode) != FOLDER_MODE:
        path.chmod(FOLDER_MODE)


def open_new(path: Path, flags: int) -> int:
    """``os.open`` creating an owner-only file (O_CREAT added). The mode is set again on the
    descriptor: the umask may have taken owner bits away, and O_CREAT leaves the mode of a
    file that existed already as it was."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_replacing(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file renamed over it), owner-only
    from its first byte on; fsynced unless ``durable`` is False (a file rewritten every
    second, whose loss in a crash costs nothing).

    The temporary file is named after the writing process (``.NAME.PID-TOKEN.tmp``), so two
    processes replacing the same file never write into one temporary, and what a killed
    writer left is recognised and removed: here, before each write of the same file, and by
    ``remove_left_temporaries`` when a vault is opened."""
    remove_left_temporaries(path.parent, path.name)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        fd = open_new(temporary, os.O_WRONLY | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        # A full disk or a failed write: the temporary is not left for the next open.
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def remove_left_temporaries(folder: Path, name: str = "*") -> list[Path]:
    """Delete the temporary files of ``write_replacing`` in ``folder`` (of the file ``name``,
    or of every file) whose writing process is gone: a writer killed between creating its
    temporary and renaming it leaves one. Returns what was removed."""
    removed: list[Path] = []
    try:
        candidates = list(folder.glob(f".{name}.*-*.tmp"))
    except OSError:
        return removed
    for temporary in candidates:
        match = _TEMPORARY.fullmatch(temporary.name)
        if match is None or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            temporary.unlink()
            removed.append(temporary)
    return removed


_TEMPORARY = re.compile(r"\..+\.(?P<pid>[0-9]+)-[0-9a-f]{8}\.tmp")


def _alive(pid: int) -> bool:
    # Our own: another thread of this process may be writing it now.
    return pid == os.getpid() or lifeline.alive(pid)


def tighten(root: Path) -> None:
    """Strip group and other bits from ``root`` and everything below it.

    Symbolic links are passed over (their target is not ours to change); an entry that
    disappears meanwhile (a Tantivy merge, a spool segment released) or that belongs to
    another user is left as it is.
    """
    for folder, subfolders, files in os.walk(root):
        base = Path(folder)
        for name in [*files, *subfolders, ""]:
            _strip_group_and_other(base / name if name else base)


def _strip_group_and_other(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not mode & _GROUP_OR_OTHER:
            return
        os.chmod(path, stat.S_IMODE(mode) & ~_GROUP_OR_OTHER)
    except (FileNotFoundError, PermissionError):
        return


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` durable (a file created, renamed or removed in it)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
