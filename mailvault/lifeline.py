"""Worker processes end when the process they work for dies.

A pool's workers wait on a queue whose writing end they hold themselves, so a SIGKILLed
importer or archiver left them (and, through them, the fork server and multiprocessing's
resource tracker, which stay while any worker holds their pipes) running for ever. Every
pool therefore starts its workers with ``bind_to(os.getpid())`` as the initializer: a thread
in the worker waits on a pidfd of the owner (Linux 5.3+; elsewhere it polls the owner's pid)
and ends the worker the moment the owner exits. With the workers gone the fork server reads
end-of-file on its pipe and exits, and so does the resource tracker: nothing is left behind.

Why not ``PR_SET_PDEATHSIG``: with ``forkserver`` a worker's parent is the fork server, not
the owner, and the fork server outlives the owner for as long as a worker does; for a child
started directly the signal follows the parent *thread*, and the archiver may be restarted
from a thread that ends. Watching the owner itself has neither problem.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from multiprocessing.context import ForkServerContext

_POLL_S = 0.5
# What the import pipeline's workers and the PST reading process run. The fork server
# imports them once and every worker it forks has them: imported in each worker instead,
# they cost a few tenths of a second of CPU per process, three times over in a PST import.
_PRELOADED = ["mailvault.ingest.prepare", "mailvault.outlook.source"]


def worker_context() -> ForkServerContext:
    """The start method of the worker pools: a fork server (no copy of this process's
    threads or open vault), which preloads what the ingestion workers run. The preload takes
    effect when this process first starts its fork server, so every pool asks the same."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOADED)
    return context


def bind_to(owner: int) -> None:
    """Make this process end when process ``owner`` ends (call it first in a worker)."""
    try:
        pidfd: int | None = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(1)  # the owner died before this worker started
    except (AttributeError, OSError):
        pidfd = None  # no pidfds here: poll the pid instead
    threading.Thread(target=_watch, args=(owner, pidfd), name="lifeline",
                     daemon=True).start()


def _watch(owner: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])  # readable once the owner has exited
    else:
        while alive(owner):
            time.sleep(_POLL_S)
    # Not sys.exit: the main thread may be deep in work whose result nobody waits for.
    os._exit(1)


def alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    return True
