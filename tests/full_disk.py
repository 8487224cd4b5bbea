"""A real full disk for tests: a small tmpfs mounted on a folder (needs root; skipped where
mounting is not allowed), filled to the last byte by a filler file, given space back by
deleting the filler or by growing the tmpfs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import unavailable


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (as mount(8) says it: "2m") on ``folder`` for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True)
    if mounted.returncode != 0:
        unavailable("a tmpfs cannot be mounted here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def resize(folder: Path, size: str) -> None:
    """Give the tmpfs on ``folder`` a new size (space comes back without touching files)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    _write_until_full(os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    return filler


def top_up(filler: Path) -> None:
    """Take back, into ``filler``, whatever space was freed since the disk was filled.

    A file replaced by renaming (a status file rewritten every second) frees its old blocks
    after its new ones were taken: if the disk was filled while such a write was under way,
    one file's worth of space comes back and that file can go on being rewritten."""
    _write_until_full(os.open(filler, os.O_WRONLY | os.O_APPEND))


def _write_until_full(fd: int) -> None:
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # ENOSPC: the file system is full, which is what was wanted
    finally:
        os.close(fd)
