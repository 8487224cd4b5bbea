"""Exports (eDiscovery): start or resume an export job, run it, list jobs, the export key,
and checking an export (which needs no vault and no principal: the receiving side runs it).

Exporting is the auditor's: it needs SEARCH_ALL (the query selects anyone's mail) and
DOWNLOAD (the bytes leave the archive). Starting is audited ``export-start`` (with the
query, format and destination), taking a job up again ``export-resume``, the end
``export-finish`` (counts, the summary's SHA-256); each names its case when it has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.compliance.subjects import normal_address
from mailvault.discovery import cases, jobs, signing, verification
from mailvault.discovery import export as engine
from mailvault.discovery.export import Finished, Progress
from mailvault.discovery.jobs import ExportJob as ExportJob  # re-exported for the faces
from mailvault.discovery.verification import ExportCheck
from mailvault.errors import InputError
from mailvault.usecases import finding
from mailvault.vault import Vault

FORMATS = ("eml", "mbox")
LAYOUTS = ("folder", "custodian")
# Exports started from the web or the API are written under the vault, by name.
NAMED_EXPORTS = "exports"
_EXPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


@dataclass(frozen=True)
class ExportKey:
    """The public half of the vault's export signing key."""

    pem: str
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {"pem": self.pem, "fingerprint": self.fingerprint}


def start_export(vault: Vault, who: Principal, query: str, dest: Path, *,
                 case: str | None = None, fmt: str = "eml", layout: str = "folder",
                 zip_it: bool = False) -> ExportJob:
    """The job that exports the query's matches to ``dest``: a new one, or the unfinished
    job already writing there with the same settings (then it resumes)."""
    _may_export(who)
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the export's query must be valid Unicode.") from None
    if fmt not in FORMATS:
        raise InputError(f"the export format is one of {', '.join(FORMATS)}, not {fmt!r}.")
    if layout not in LAYOUTS:
        raise InputError(f"exports are laid out by {' or '.join(LAYOUTS)}, not {layout!r}.")
    dest = dest.expanduser().resolve()
    found = cases.named(vault, case) if case else None
    earlier = jobs.at(vault, dest)
    if earlier is not None and earlier.state == "running":
        same = (earlier.query, earlier.format, earlier.layout, earlier.zip,
                earlier.case_id) == (query, fmt, layout, zip_it, found.id if found else None)
        if not same:
            raise InputError(f"{dest} holds an unfinished export (job {earlier.id}) of other "
                             "settings: run it again with the same ones, or choose another "
                             "folder.")
        jobs.resumed(vault, earlier, who.name)
        return earlier
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(f"{dest} exists and is not an empty folder: exports go to a new "
                         "folder.")
    if found is not None and not found.is_open:
        raise InputError(f"the case {found.name!r} is closed.")
    if layout == "custodian" and not _custodians(vault, found):
        raise InputError("an export by custodian needs --case with custodians.")
    node = finding.scoped_query(vault, who, query)
    return jobs.create(vault, case_id=found.id if found else None, query=query, fmt=fmt,
                       layout=layout, zip_it=zip_it, dest=dest, actor=who.name,
                       ids=vault.index.ids(node))


def named_destination(vault: Vault, name: str) -> Path:
    """Where an export started from the web or the API is written: ``VAULT/exports/NAME``
    (a name of letters, digits, '.', '_' and '-', at most 80)."""
    if not _EXPORT_NAME.fullmatch(name) or name in (".", ".."):
        raise InputError("an export's name is 1 to 80 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit.")
    return vault.path / NAMED_EXPORTS / name


def person_query(address: str, query: str = "") -> str:
    """The query of a subject-access export (``export --person``): every message ``address``
    is party to (``party:``, the rule of ``person report``), narrowed by ``query`` if any."""
    address = normal_address(address)
    if '"' in address:
        raise InputError(f"{address!r} cannot be exported by --person (it holds a quote).")
    party = f'party:"{address}"'
    return f"{party} ({query})" if query.strip() else party


def run_export(vault: Vault, who: Principal, job_id: int,
               progress: Progress | None = None) -> Finished:
    """Run a started (or interrupted) job to its end."""
    _may_export(who)
    job = jobs.get(vault, job_id)
    case = cases.by_id(vault, job.case_id) if job.case_id is not None else None
    return engine.run(vault, job, case_name=case.name if case else None,
                      custodians=_custodians(vault, case), progress=progress)


def interrupted_exports(vault: Vault, who: Principal) -> list[ExportJob]:
    """The unfinished jobs of exports started from the web or the API (written under
    ``VAULT/exports``), oldest first, each taken up again by ``who`` (audited
    ``export-resume``): what a stop of ``serve`` left, for it to run again when it starts.
    Exports of the command line are left to their command, which resumes them."""
    _may_export(who)
    named = vault.path.resolve() / NAMED_EXPORTS
    found = [j for j in reversed(jobs.listed(vault))
             if j.state == "running" and Path(j.dest).parent == named]
    for job in found:
        jobs.resumed(vault, job, who.name)
    return found


def list_exports(vault: Vault, who: Principal, case: str | None = None) -> list[ExportJob]:
    """Export jobs, newest first (one case's if named); not audited: states and counts."""
    _may_export(who)
    return jobs.listed(vault, cases.named(vault, case).id if case else None)


def export_job(vault: Vault, who: Principal, job_id: int) -> ExportJob:
    """One export job and its progress."""
    _may_export(who)
    return jobs.get(vault, job_id)


def export_key(vault: Vault, who: Principal) -> ExportKey:
    """The public key exports are signed with (public: anyone signed in may have it)."""
    del who  # a public key: every principal may read it
    pem = signing.public_pem(vault.export_signing_key())
    return ExportKey(pem.decode("ascii"), signing.fingerprint(pem))


def verify_export(path: Path, key_pem: bytes | None = None) -> ExportCheck:
    """Check an export folder or zip against its summary, manifest and signature (no vault:
    the receiving side runs it); ``key_pem``: the public key they were given."""
    return verification.verify(path.expanduser(), key_pem)


def _may_export(who: Principal) -> None:
    require(who, Permission.SEARCH_ALL)
    require(who, Permission.DOWNLOAD)


def _custodians(vault: Vault, case: cases.Case | None) -> list[str]:
    return [i.value for i in cases.items(vault, case, "custodian")] if case else []
