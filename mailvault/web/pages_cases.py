"""The auditor's case pages: ``/cases`` (every case; open a new one) and ``/cases/NAME``
(custodians and saved queries with their message counts, linked holds, notes, exports with
their progress and summary hash, the chain of custody) with its actions: add a custodian, a
query or a note, place a hold, start or resume an export, close the case.

Every action is a CSRF-checked form calling ``usecases.cases`` or ``usecases.exporting``
with the viewer's principal, which check the role and write the audit entry (each tagged
with the case, so it joins the chain of custody shown below it). An export runs in the
serving process's job worker (background.py), not in the request: the page shows how far
it got, and Resume takes up one a stop interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mailvault.usecases import cases, exporting
from mailvault.web.background import export_progress, run_export_in_background
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep, web_of
from mailvault.web.pages_admin import done, page

router = APIRouter(include_in_schema=False)
CASES = "/cases"
Text = Annotated[str, Form()]


def _case_path(name: str) -> str:
    return f"{CASES}/{quote(name, safe='')}"


@router.get(CASES)
def cases_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "cases.html", cases=cases.list_cases(vault, who.principal))


@router.post(CASES)
def create_case(who: FormViewerDep, vault: VaultDep, name: Text = "",
                description: Text = "") -> Response:
    case = cases.create_case(vault, who.principal, name, description.strip())
    return done(_case_path(case.name), "case-created", case.name)


@router.get(CASES + "/{name:path}")
def case_page(request: Request, name: str, who: ViewerDep, vault: VaultDep) -> Response:
    view = cases.show_case(vault, who.principal, name)
    background = web_of(request).background
    return page(request, who, "case.html", view=view, path=_case_path(view.case.name),
                progress={j.id: export_progress(background, j) for j in view.exports},
                formats=exporting.FORMATS, layouts=exporting.LAYOUTS)


@router.post(CASES + "/{name:path}/custodians")
def add_custodian(name: str, who: FormViewerDep, vault: VaultDep,
                  address: Text = "") -> Response:
    item = cases.add_custodian(vault, who.principal, name, address)
    return done(_case_path(name), "custodian-added", item.value)


@router.post(CASES + "/{name:path}/queries")
def add_query(name: str, who: FormViewerDep, vault: VaultDep, label: Text = "",
              query: Text = "") -> Response:
    item = cases.add_query(vault, who.principal, name, label, query.strip())
    return done(_case_path(name), "query-added", item.name)


@router.post(CASES + "/{name:path}/notes")
def add_note(name: str, who: FormViewerDep, vault: VaultDep, text: Text = "") -> Response:
    cases.add_note(vault, who.principal, name, text.strip())
    return done(_case_path(name), "note-added", "")


@router.post(CASES + "/{name:path}/holds")
def place_hold(name: str, who: FormViewerDep, vault: VaultDep, hold: Text = "",
               custodian: Text = "", query: Text = "", reason: Text = "",
               owner: Text = "") -> Response:
    placed = cases.place_hold(vault, who.principal, name, hold.strip(), reason=reason.strip(),
                              owner=owner.strip(), custodian=custodian.strip() or None,
                              query=query.strip() or None)
    return done(_case_path(name), "hold-placed",
                f"{placed.hold.name} ({placed.messages} messages now)")


@router.post(CASES + "/{name:path}/exports")
def start_export(request: Request, name: str, who: FormViewerDep, vault: VaultDep,
                 folder: Text = "", query: Text = "", fmt: Text = "eml",
                 by: Text = "folder", zip_it: Text = "") -> Response:
    job = exporting.start_export(vault, who.principal, query.strip(),
                                 exporting.named_destination(vault, folder.strip()),
                                 case=name, fmt=fmt, layout=by, zip_it=bool(zip_it))
    run_export_in_background(web_of(request).background, vault, who.principal, job)
    return done(_case_path(name), "export-started", job.id)


@router.post(CASES + "/{name:path}/exports/{job_id}/resume")
def resume_export(request: Request, name: str, job_id: int, who: FormViewerDep,
                  vault: VaultDep) -> Response:
    background = web_of(request).background
    job = exporting.export_job(vault, who.principal, job_id)
    if export_progress(background, job) == "interrupted":
        # Started again with its own settings, the job is found by its folder and resumed.
        job = exporting.start_export(vault, who.principal, job.query, Path(job.dest),
                                     case=name, fmt=job.format, layout=job.layout,
                                     zip_it=job.zip)
        run_export_in_background(background, vault, who.principal, job)
    return done(_case_path(name), "export-resumed", job.id)


@router.post(CASES + "/{name:path}/close")
def close_case(name: str, who: FormViewerDep, vault: VaultDep, note: Text = "") -> Response:
    case = cases.close_case(vault, who.principal, name, note.strip())
    return done(_case_path(case.name), "case-closed", case.name)
