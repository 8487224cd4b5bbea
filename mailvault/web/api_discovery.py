"""The eDiscovery part of the JSON API (under /api/v1/): cases, and export jobs started,
listed and followed from a script. The same use cases, role checks and audit entries as the
command line: auditors only.

An export started here is written below the vault, to ``VAULT/exports/NAME``, by a thread
of the serving process; ``GET /api/v1/exports/{id}`` follows it. Starting the same export
(same name and settings) again after an interruption resumes it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from mailvault.errors import InputError, MailvaultError
from mailvault.usecases import cases, exporting
from mailvault.web.api import ApiJSON
from mailvault.web.identity import PrincipalDep, VaultDep

log = logging.getLogger("mailvault.web")
router = APIRouter(prefix="/api/v1", default_response_class=ApiJSON, tags=["discovery"])
EXPORTS_FOLDER = "exports"


class NewCase(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=10_000)


class NewExport(BaseModel):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="The export's folder under VAULT/exports/.")
    query: str = Field(default="", max_length=2000)
    format: str = Field(default="eml", pattern="^(eml|mbox)$")
    by: str = Field(default="folder", pattern="^(folder|custodian)$")
    case: str | None = Field(default=None, max_length=100)
    zip: bool = False


@router.get("/cases", summary="Every case")
def list_cases(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"cases": [c.to_json() for c in cases.list_cases(vault, who)]}


@router.post("/cases", summary="Open a case", status_code=201)
def create_case(body: NewCase, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return cases.create_case(vault, who, body.name, body.description).to_json()


@router.get("/cases/{name}", summary="A case with its custodians, queries, holds, notes, "
            "exports and chain of custody")
def show_case(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return cases.show_case(vault, who, name).to_json()


@router.get("/exports", summary="Export jobs, newest first")
def list_exports(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"exports": [j.to_json() for j in exporting.list_exports(vault, who)]}


@router.get("/exports/{job_id}", summary="One export job and its progress")
def export_job(job_id: int, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return exporting.export_job(vault, who, job_id).to_json()


@router.post("/exports", summary="Start (or resume) an export job", status_code=202)
def start_export(body: NewExport, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    """Starts the job and returns it at once; it runs in the serving process."""
    if body.name in (".", ".."):
        raise InputError("an export's name must not be '.' or '..'.")
    job = exporting.start_export(vault, who, body.query, vault.path / EXPORTS_FOLDER / body.name,
                                 case=body.case, fmt=body.format, layout=body.by,
                                 zip_it=body.zip)

    def work() -> None:
        try:
            exporting.run_export(vault, who, job.id)
        except MailvaultError as exc:
            log.warning("export job %s stopped: %s", job.id, exc)

    threading.Thread(target=work, name=f"export-{job.id}", daemon=True).start()
    return job.to_json()
