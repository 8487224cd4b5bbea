"""Run one ``mailvault`` command that SIGKILLs itself (its whole process group) at a named
step: ``python -m tests.reliability.die_at STEP WHEN NTH -- ARGS...``; or, with
``MAILVAULT_TEST_HOLD=PREFIX`` in its environment, that stops there instead until told to go
on (it creates ``PREFIX.reached`` and waits for ``PREFIX.go``), so that a test can run another
command at that very moment.

STEP is ``module:attribute`` or ``module:Class.attribute`` (a function or method the command
calls, looked up where its callers look it up); WHEN is ``before`` (the call never runs) or
``after`` (it returned, and the caller has not gone on: a transaction it is part of is not
committed yet); NTH counts calls from 1. A command that never reaches the step ends as it
would have, so the caller can tell (its exit status is not -SIGKILL).
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOLD = "MAILVAULT_TEST_HOLD"


def die() -> None:
    """SIGKILL this process and everything it started."""
    os.killpg(0, signal.SIGKILL)


def hold(prefix: Path) -> None:
    """Say that the step is reached, and wait until the test says to go on."""
    prefix.with_name(prefix.name + ".reached").touch()
    go = prefix.with_name(prefix.name + ".go")
    while not go.exists():
        time.sleep(0.02)


def stop() -> None:
    """Die, or hold when the environment asks for that."""
    prefix = os.environ.get(HOLD)
    if prefix:
        hold(Path(prefix))
    else:
        die()


def arm(step: str, when: str, nth: int) -> None:
    """Replace ``step`` by a wrapper that stops before or after its ``nth`` call."""
    module_name, _, attribute = step.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original: Callable[..., Any] = getattr(owner, name)
    calls = 0

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth and when == "before":
            stop()
        result = original(*args, **kwargs)
        if calls == nth and when == "after":
            stop()
        return result

    setattr(owner, name, wrapper)


def main(argv: list[str]) -> None:
    step, when, nth, separator, *command = argv
    if when not in ("before", "after") or separator != "--":
        raise SystemExit(__doc__)
    arm(step, when, int(nth))
    from mailvault.cli import main as mailvault

    sys.argv = ["mailvault", *command]
    mailvault()


if __name__ == "__main__":
    main(sys.argv[1:])
