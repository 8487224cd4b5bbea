"""Long jobs started from the web (exports: api_discovery.py, pages_cases.py; restores to a
mailbox: pages_restore.py, api.py) run here, not inside the request: one worker thread of
the serving process takes them one at a time, in the order they were started, so a burst of
exports cannot take both cores from search and capture. The request answers at once; an
export's progress is in the catalog (``export_jobs``), which the case page and
``GET /api/v1/exports/ID`` show.

A job interrupted by a stop of ``serve`` stays unfinished in the catalog; serve takes it up
again when it starts (``resume_interrupted_exports``, audited ``export-resume`` by
``system:serve``), and starting it again (the page's Resume, or the same API call) resumes
it too, from its checkpoint.

A restore has no catalog job: its progress (``RestoreRun``) lives here, seen only by who
started it, and the last ``KEPT_RESTORES`` are kept. The mailbox password is held by the
queued job alone and dropped when it ends. A restore stopped midway is resumed by starting
it again: it appends only what the mailbox does not hold yet.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailvault.accounts.principal import SERVE_SYSTEM, Principal
from mailvault.errors import MailvaultError
from mailvault.usecases import exporting, restoring
from mailvault.usecases.exporting import ExportJob
from mailvault.usecases.restoring import FolderMode, RestoreReport, Target
from mailvault.vault import Vault

log = logging.getLogger("mailvault.web")
KEPT_RESTORES = 100


@dataclass
class RestoreRun:
    """A restore started from the web: what it restores where, and how far it got (told by
    the restore as its ``Progress``)."""

    id: int
    owner: str
    query: str
    target: str
    folder_mode: str
    state: str = "queued"
    planned: int = 0
    handled: int = 0
    report: RestoreReport | None = None
    error: str = ""

    def start(self, copies: int, size: int) -> None:
        del size
        self.planned = copies

    def advance(self, copies: int, size: int) -> None:
        del size
        self.handled = copies

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "query": self.query, "target": self.target,
                "folder_mode": self.folder_mode, "state": self.state,
                "planned": self.planned, "handled": self.handled,
                "report": self.report.to_json() if self.report else None,
                "error": self.error or None}


@dataclass
class Background:
    """The worker, and which jobs (by key, e.g. ``export-7``) are queued or running."""

    _queue: queue.Queue[tuple[str, Callable[[], object]]] = field(
        default_factory=queue.Queue)
    _active: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _restores: dict[int, RestoreRun] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def submit(self, key: str, work: Callable[[], object]) -> bool:
        """Queue ``work`` under ``key``; False (and nothing queued) when that key is queued
        or running already, so a double click does not run a job twice."""
        with self._lock:
            if key in self._active:
                return False
            self._active.add(key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="web-jobs",
                                                daemon=True)
                self._thread.start()
        self._queue.put((key, work))
        return True

    def is_active(self, key: str) -> bool:
        """Whether the job is queued or running now."""
        with self._lock:
            return key in self._active

    def new_restore(self, owner: str, query: str, target: str, folder_mode: str
                    ) -> RestoreRun:
        """A new restore run, kept (with the last KEPT_RESTORES) for its owner to follow."""
        with self._lock:
            run = RestoreRun(next(self._numbers), owner, query, target, folder_mode)
            self._restores[run.id] = run
            while len(self._restores) > KEPT_RESTORES:
                self._restores.pop(next(iter(self._restores)))
        return run

    def restores_of(self, owner: str) -> list[RestoreRun]:
        """``owner``'s restore runs, newest first."""
        with self._lock:
            return [r for r in reversed(self._restores.values()) if r.owner == owner]

    def wait_idle(self) -> None:
        """Until every job queued so far has ended (tests, and an orderly stop)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            key, work = self._queue.get()
            try:
                work()
            except MailvaultError as exc:
                log.warning("%s stopped: %s", key, exc)
            except Exception:
                log.exception("%s failed", key)
            finally:
                with self._lock:
                    self._active.discard(key)
                self._queue.task_done()


def export_key(job_id: int) -> str:
    return f"export-{job_id}"


def run_export_in_background(background: Background, vault: Vault, who: Principal,
                             job: ExportJob) -> bool:
    """Queue a started (or resumed) export job to run to its end under ``who``; False when
    it is queued or running already."""
    return background.submit(export_key(job.id),
                             lambda: exporting.run_export(vault, who, job.id))


def resume_interrupted_exports(background: Background, vault: Vault) -> list[int]:
    """Queue every export of the web or the API that a stop of serve left unfinished, run
    on as ``system:serve``; their ids."""
    found = exporting.interrupted_exports(vault, SERVE_SYSTEM)
    for job in found:
        run_export_in_background(background, vault, SERVE_SYSTEM, job)
    return [j.id for j in found]


def export_progress(background: Background, job: ExportJob) -> str:
    """An export job's state as a person reads it: done, running (or queued), or
    interrupted (unfinished and not running: start it again to resume)."""
    if job.state != "running":
        return job.state
    return "running" if background.is_active(export_key(job.id)) else "interrupted"


def restore_in_background(background: Background, vault: Vault, who: Principal, query: str,
                          target: Target, password: str, mode: FolderMode) -> RestoreRun:
    """Queue a restore into ``target`` (after checking ``who`` may restore at all); its run
    says how far it got, and why it stopped."""
    restoring.require_restore(vault, who)
    run = background.new_restore(who.name, query, target.describe(), mode.describe())

    def work() -> None:
        run.state = "running"
        try:
            run.report = restoring.restore_mail(vault, who, query, target, password, mode, run)
        except MailvaultError as exc:
            run.error = str(exc)
            run.state = "failed"
            return
        run.state = "stopped" if run.report.stopped else "done"

    background.submit(f"restore-{run.id}", work)
    return run
