"""What a process tree uses, read from /proc (Linux): resident memory and open files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    """RSS (bytes) and open file descriptors of a process and all its descendants."""

    rss: int
    fds: int
    processes: int


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(name))
    found, frontier = [pid], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found += children
        frontier += children
    return found


def usage(pid: int) -> Usage:
    """What ``pid``'s process tree holds now (processes that end meanwhile count as 0)."""
    rss = fds = count = 0
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
            open_fds = len(os.listdir(f"/proc/{member}/fd"))
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
        fds += open_fds
        count += 1
    return Usage(rss, fds, count)


def folder_bytes(folder: Path) -> int:
    """Bytes in the files directly inside ``folder`` (0 when it does not exist)."""
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
