"""Restoring archived mail into a mailbox over IMAP (``mailvault restore``, the API).

An auditor may restore any message (DOWNLOAD: a restore hands the exact bytes to someone
else's server, as a download hands them to a person). A user may restore their own mail
only when ``[restore] users_own_mail`` is on; the query is then limited to the messages one
of their addresses is party to, as their searches are. Audited twice: ``restore`` before
the first APPEND (query, target, folder mode, how many messages), so a restore stopped
midway is on record, and ``restore-done`` after (counts by folder, the SHA-256 of every
message appended, why it stopped). The mailbox password is in neither.

Each restore is a catalog job (``sources/restore_jobs.py``) whose progress is kept as it
runs: starting the same restore again while it is unfinished takes up that job, and its
report says how far the earlier runs had got; the faces read restores from there.
"""

from __future__ import annotations

from mailvault.accounts.principal import Principal, allows, require
from mailvault.accounts.roles import Permission
from mailvault.errors import MailvaultError, NotFoundError, PermissionDenied
from mailvault.sources import restore_jobs
from mailvault.sources.restore_jobs import INTERRUPTED as INTERRUPTED
from mailvault.sources.restore_jobs import RestoreJob as RestoreJob
from mailvault.sources.restoring import FolderMode as FolderMode  # re-exported for the faces
from mailvault.sources.restoring import Progress, restore
from mailvault.sources.restoring import RestoreReport as RestoreReport
from mailvault.sources.restoring import Target as Target
from mailvault.store import audit
from mailvault.usecases.finding import scoped_query
from mailvault.vault import Vault


def target(where: str, tls: str, user: str, ca_file: str | None = None) -> Target:
    """The mailbox to restore into, from ``HOST[:PORT]``, ``implicit`` or ``starttls``, the
    user and a CA file to trust (InputError in one sentence when one is wrong)."""
    return Target.parse(where, tls, user, ca_file)


def folder_mode(text: str) -> FolderMode:
    """``keep``, ``flat`` or ``into NAME`` as a folder mode."""
    return FolderMode.parse(text)


def may_restore(vault: Vault, principal: Principal) -> bool:
    """Whether ``principal`` may restore mail at all (for faces deciding to offer it)."""
    if allows(principal, Permission.DOWNLOAD):
        return True
    return allows(principal, Permission.OWN_MAIL) and vault.settings.restore.users_own_mail


def require_restore(vault: Vault, who: Principal) -> None:
    """PermissionDenied unless ``who`` may restore mail (checked before a face queues a
    restore to run later, and again when it runs)."""
    if not may_restore(vault, who):
        if allows(who, Permission.OWN_MAIL):
            raise PermissionDenied(f"{who.name} may not restore mail: restoring one's own "
                                   "mail is turned off ([restore] users_own_mail).")
        require(who, Permission.DOWNLOAD)


def queue_restore(vault: Vault, who: Principal, query: str, target: Target,
                  mode: FolderMode) -> RestoreJob:
    """The job a restore will run as (the unfinished one of the same restore, or a new
    one), marked queued: for a face that runs it later with ``restore_mail``."""
    require_restore(vault, who)
    return restore_jobs.take(vault, who.name, query, target.describe(), mode.describe())


def restore_mail(vault: Vault, who: Principal, query: str, target: Target, password: str,
                 mode: FolderMode, progress: Progress | None = None) -> RestoreReport:
    """APPEND the messages ``who`` may see that match ``query`` into the mailbox
    ``target``; running it again appends only what is missing, as the same job."""
    require_restore(vault, who)
    ids = sorted(vault.index.ids(scoped_query(vault, who, query)))
    job = restore_jobs.take(vault, who.name, query, target.describe(), mode.describe())
    # How the last run ended: its stop or failure, else it was killed mid-run.
    resumed = ({"runs": job.runs, "planned": job.planned, "handled": job.handled,
                "ended": job.error or (job.report or {}).get("stopped") or "interrupted"}
               if job.runs else None)
    with restore_jobs.running(vault, job) as job:
        recorder = restore_jobs.Recorder(vault, job, progress)
        with vault.engine.begin() as conn:
            audit.record(conn, who.name, "restore", {
                "query": query, "target": target.describe(), "tls": target.tls,
                "folder_mode": mode.describe(), "messages": len(ids), "job": job.id})
        try:
            report = restore(vault, ids, target, password, mode, recorder)
        except MailvaultError as exc:
            failed = RestoreReport(target.describe(), stopped=str(exc), job=job.id,
                                   resumed=resumed)
            recorder.flush()
            restore_jobs.ended(vault, job, failed, error=str(exc))
            _record_done(vault, who, failed)
            raise
        report.job, report.resumed = job.id, resumed
        recorder.flush()
        restore_jobs.ended(vault, job, report)
    _record_done(vault, who, report)
    return report


def restores(vault: Vault, who: Principal) -> list[RestoreJob]:
    """The restores ``who`` started, newest first, with how far each got."""
    require_restore(vault, who)
    return restore_jobs.of(vault, who.name)


def restore_job(vault: Vault, who: Principal, job_id: int) -> RestoreJob:
    """One restore ``who`` started; NotFoundError for anyone else's (not even its number
    is confirmed)."""
    require_restore(vault, who)
    job = restore_jobs.get(vault, job_id)
    if job.actor != who.name:
        raise NotFoundError(f"you started no restore {job_id}.")
    return job


def _record_done(vault: Vault, who: Principal, report: RestoreReport) -> None:
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "restore-done", {
            "target": report.target, **report.totals(),
            "folders": {n: r.to_json() for n, r in sorted(report.folders.items())},
            "sha256": sorted(report.appended_sha256), "stopped": report.stopped or None,
            "job": report.job})
