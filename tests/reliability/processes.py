"""Commands and servers run as real processes, killed with SIGKILL at seeded random moments.

A moment is a point of progress (so many messages committed, acknowledged or moved) plus a
random delay after it: progress makes the kills land inside the work whatever the machine's
load, the delay spreads them between commits. The seed is printed, so a failing loop is
re-run exactly with ``MAILVAULT_CRASH_SEED``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from mailvault.config import CONFIG_FILE, load_settings
from tests.support import MAILVAULT, catalog_sql

WAIT_S = 120.0


def seeded(name: str) -> random.Random:
    """A random source for one loop, its seed printed (pytest shows it when a test fails)."""
    seed = int(os.environ.get("MAILVAULT_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"{name}: MAILVAULT_CRASH_SEED={seed}")
    return random.Random(seed)


@dataclass(frozen=True)
class Moment:
    """Kill once ``progress`` reaches ``after``, then ``delay_s`` later."""

    after: int
    delay_s: float


def moment(rng: random.Random, most: int, delay_s: float = 0.5) -> Moment:
    """A random moment within the first ``most`` units of progress."""
    return Moment(rng.randrange(most), rng.uniform(0.0, delay_s))


def start(*args: str | Path, env: dict[str, str] | None = None,
          stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start ``mailvault ARGS`` in its own process group (so a kill reaches its workers)."""
    return subprocess.Popen([*MAILVAULT, *map(str, args)], env={**os.environ, **(env or {})},
                            stdout=stdout, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_at(process: subprocess.Popen[bytes], progress: Callable[[], int],
            at: Moment) -> bool:
    """SIGKILL the process group at ``at``; False when the command ended first."""
    deadline = time.monotonic() + WAIT_S
    while process.poll() is None and progress() < at.after:
        assert time.monotonic() < deadline, "no progress before the kill"
        time.sleep(0.01)
    time.sleep(at.delay_s)
    ended = process.poll() is not None
    kill_group(process)
    return not ended


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything in its group, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT_S)


def catalog_scalar(vault: Path, sql: str, *args: object) -> int:
    """One number read from the catalog as an outside reader would (0 before it exists or
    while it is locked): nothing is opened, so nothing heals."""
    if (vault / CONFIG_FILE).exists() and load_settings(vault).catalog.url:
        try:
            [(value,)] = catalog_sql(vault, sql, *args)
        except SQLAlchemyError:
            return 0
        return int(value or 0)
    try:
        with contextlib.closing(sqlite3.connect(f"file:{vault / 'catalog.sqlite'}?mode=ro",
                                                uri=True, timeout=0.2)) as conn:
            return int(conn.execute(sql, args).fetchone()[0] or 0)
    except sqlite3.Error:
        return 0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``condition`` until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
