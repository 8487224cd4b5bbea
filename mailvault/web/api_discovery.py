"""The eDiscovery part of the JSON API (under /api/v1/): cases, and export jobs started,
listed and followed from a script. The same use cases, role checks and audit entries as the
command line: auditors only.

An export started here is written below the vault, to ``VAULT/exports/NAME``, by the
serving process's job worker (background.py), never inside the request;
``GET /api/v1/exports/{id}`` follows it (``progress``: running, interrupted or done).
Starting the same export (same name and settings) again after an interruption resumes it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mailvault.usecases import cases, exporting
from mailvault.usecases.exporting import ExportJob
from mailvault.web.api import ApiJSON
from mailvault.web.background import export_progress, run_export_in_background
from mailvault.web.identity import PrincipalDep, VaultDep, web_of

router = APIRouter(prefix="/api/v1", default_response_class=ApiJSON, tags=["discovery"])


class NewCase(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=10_000)


class NewExport(BaseModel):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="The export's folder under VAULT/exports/.")
    query: str = Field(default="", max_length=2000)
    person: str | None = Field(default=None, max_length=320,
                               description="A subject-access export: every message this "
                               "address is party to (narrowed by the query, if any).")
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


def _shown(request: Request, job: ExportJob) -> dict[str, Any]:
    return {**job.to_json(), "progress": export_progress(web_of(request).background, job)}


@router.get("/exports", summary="Export jobs, newest first")
def list_exports(request: Request, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"exports": [_shown(request, j) for j in exporting.list_exports(vault, who)]}


@router.get("/exports/{job_id}", summary="One export job and its progress")
def export_job(request: Request, job_id: int, who: PrincipalDep,
               vault: VaultDep) -> dict[str, Any]:
    return _shown(request, exporting.export_job(vault, who, job_id))


@router.post("/exports", summary="Start (or resume) an export job", status_code=202)
def start_export(request: Request, body: NewExport, who: PrincipalDep,
                 vault: VaultDep) -> dict[str, Any]:
    """Starts the job and returns it at once; the serving process's job worker runs it."""
    query = body.query if body.person is None else exporting.person_query(body.person,
                                                                           body.query)
    job = exporting.start_export(vault, who, query,
                                 exporting.named_destination(vault, body.name),
                                 case=body.case, fmt=body.format, layout=body.by,
                                 zip_it=body.zip)
    run_export_in_background(web_of(request).background, vault, who, job)
    return _shown(request, job)
