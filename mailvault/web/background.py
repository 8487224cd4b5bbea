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

A restore is a catalog job too (``restore_jobs``): its progress is kept there as it runs, so
the page and ``GET /api/v1/restores/ID`` show it after a restart of serve, to who started it
only. The mailbox password is held by the queued work alone and dropped when it ends, so a
restore that a stop of serve interrupted is not taken up again by itself: it reads as
``interrupted``, and starting it again (same query, mailbox and folder mode) resumes it as
the same job, appending only what the mailbox does not hold yet.
"""

from __future__ import annotations

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
from mailvault.usecases.restoring import INTERRUPTED, FolderMode, RestoreJob, Target
from mailvault.vault import Vault

log = logging.getLogger("mailvault.web")


@dataclass
class Background:
    """The worker, and which jobs (by key, e.g. ``export-7``) are queued or running."""

    _queue: queue.Queue[tuple[str, Callable[[], object]]] = field(
        default_factory=queue.Queue)
    _active: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

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


def restore_key(job_id: int) -> str:
    return f"restore-{job_id}"


def restore_in_background(background: Background, vault: Vault, who: Principal, query: str,
                          target: Target, password: str, mode: FolderMode) -> RestoreJob:
    """Queue a restore into ``target`` (after checking ``who`` may restore at all); its job
    (a new one, or the unfinished one of the same restore) says how far it gets."""
    job = restoring.queue_restore(vault, who, query, target, mode)
    background.submit(restore_key(job.id), lambda: restoring.restore_mail(
        vault, who, query, target, password, mode))
    return job


def restore_view(background: Background, job: RestoreJob) -> dict[str, Any]:
    """A restore as the page and the API show it: a job the catalog says is queued that
    this process's worker does not hold was lost with an earlier serve (interrupted)."""
    view = job.to_json()
    if job.state == "queued" and not background.is_active(restore_key(job.id)):
        view["state"] = INTERRUPTED
    return view
