"""The JSON API under /api/v1/ (OpenAPI at /api/v1/openapi.json): what the pages do, for
scripts. Authenticated by ``Authorization: Bearer mvt_...`` (or, for reading, the browser's
session); the same use cases, role checks and audit entries as the pages.

The shapes scripts rely on: ``GET /api/v1/search?q=&limit=&offset=`` is
``{"total": N, "messages": [...]}`` with each message as ``mailvault search --json`` prints
it; ``GET /api/v1/messages/{id}/raw`` is the exact bytes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from mailvault.fsnames import exact_json
from mailvault.mime_leaves import leaves
from mailvault.usecases import finding, restoring, saved_searches, verifying
from mailvault.web.background import restore_in_background, restore_view
from mailvault.web.downloads import attachment_response, raw_response
from mailvault.web.identity import PrincipalDep, VaultDep, web_of


class ApiJSON(JSONResponse):
    """JSON whose strings may hold bytes that were not UTF-8 (escaped, lossless)."""

    def render(self, content: Any) -> bytes:
        return exact_json(content, separators=(",", ":")).encode("utf-8")


router = APIRouter(prefix="/api/v1", default_response_class=ApiJSON, tags=["archive"])

Limit = Annotated[int, Query(ge=0, le=1000, description="How many messages (at most 1000).")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="How many to skip.")]
Sort = Annotated[str, Query(pattern="^(newest|oldest|largest)$",
                            description="newest, oldest or largest first.")]
QueryText = Annotated[str, Query(description="A query in the search language ('' = all).")]


def _to(principal_name: str) -> str:
    return f"api:{principal_name}"


@router.get("/search", summary="Search messages")
def search(request: Request, who: PrincipalDep, vault: VaultDep, q: QueryText = "",
           limit: Limit = 50, offset: Offset = 0, sort: Sort = "newest") -> dict[str, Any]:
    """``{"total": N, "messages": [...]}``, each message as ``search --json`` prints it."""
    with web_of(request).metrics.timing_search("api"):
        page = finding.search(vault, who, q, limit=limit, offset=offset, order=sort)
    return {"total": page.total, "messages": [row.to_json() for row in page.rows]}


@router.get("/count", summary="Count messages")
def count(who: PrincipalDep, vault: VaultDep, q: QueryText = "") -> dict[str, int]:
    return {"total": finding.count(vault, who, q)}


@router.get("/facets", summary="Facet counts of a query")
def facets(who: PrincipalDep, vault: VaultDep, q: QueryText = "") -> dict[str, Any]:
    """Counts by year, sender domain, folder, tier and attachment, of the messages the
    caller may see."""
    return finding.facets(vault, who, q).to_json()


@router.get("/messages/{ref}", summary="One message")
def message(ref: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    """The message's fields, every header, every arrival, its text and attachments."""
    opened = finding.open_message(vault, who, ref)
    parts = leaves(opened.raw)
    text = "\n\n".join(p.text() for p in parts
                       if p.is_body_text and p.content_type == "text/plain")
    check = verifying.last_check(vault, who, str(opened.row.id))
    return {
        **opened.row.to_json(),
        "headers": [[name, value] for name, value in opened.headers],
        "arrivals": [a.to_json() for a in opened.arrivals],
        "text": text or opened.parsed.body,
        "attachments": [{"number": p.number, "filename": p.filename,
                         "content_type": p.content_type, "size": len(p.data),
                         "content_id": p.content_id}
                        for p in parts if not p.is_body_text],
        "last_verified": check.to_json() if check else None,
    }


@router.get("/messages/{ref}/raw", summary="The exact bytes of a message",
            response_class=Response,
            responses={200: {"content": {"message/rfc822": {}}}})
def raw(ref: str, who: PrincipalDep, vault: VaultDep) -> Response:
    row, data = finding.raw_message(vault, who, ref, _to(who.name))
    return raw_response(row, data)


@router.get("/messages/{ref}/attachments/{number}", summary="One attachment's bytes",
            response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
def attachment(ref: str, number: int, who: PrincipalDep, vault: VaultDep) -> Response:
    _row, part = finding.attachment(vault, who, ref, number, _to(who.name))
    return attachment_response(part)


@router.get("/messages/{ref}/conversation", summary="The conversation of a message")
def conversation(ref: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"messages": [row.to_json() for row in finding.conversation(vault, who, ref)]}


@router.post("/messages/{ref}/verify", summary="Verify a message's bytes now")
def verify(ref: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return verifying.verify_message(vault, who, ref).to_json()


@router.get("/saved-searches", summary="The caller's saved searches")
def saved(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"searches": [s.to_json() for s in saved_searches.saved(vault, who)]}


class RestoreRequest(BaseModel):
    """Which messages to restore, and the mailbox to APPEND them to."""

    query: str = Field("", description="A query in the search language ('' = all).")
    imap: str = Field(description="The IMAP server: HOST or HOST:PORT.")
    user: str = Field(description="The mailbox's user name.")
    password: str = Field(description="The mailbox's password (used once, never stored "
                          "or logged).")
    tls: str = Field("implicit", pattern="^(implicit|starttls)$",
                     description="implicit (IMAPS) or starttls; certificates are verified.")
    ca_file: str | None = Field(None, description="A CA file on the archive's machine to "
                                "trust too.")
    folder_mode: str = Field("keep", description="keep, flat, or 'into NAME'.")


@router.post("/restore", summary="Restore messages into a mailbox over IMAP",
             status_code=202)
def restore(request: Request, body: RestoreRequest, who: PrincipalDep,
            vault: VaultDep) -> dict[str, Any]:
    """Starts APPENDing the exact bytes of the matching messages the caller may restore
    (auditors: any; users: their own, when ``[restore] users_own_mail`` is on), with their
    original INTERNALDATE and flags, and answers at once with the run; the serving
    process's job worker does the work. ``GET /api/v1/restores/{id}`` follows it: its
    ``state`` (queued, running, done, stopped: connection lost midway, failed: refused
    login or certificate, unreachable server, with ``error`` in one sentence) and its
    ``report`` (counts by folder, failures). What the mailbox already holds is skipped, so
    starting it again resumes."""
    target = restoring.target(body.imap, body.tls, body.user, body.ca_file)
    job = restore_in_background(web_of(request).background, vault, who, body.query, target,
                                body.password, restoring.folder_mode(body.folder_mode))
    return restore_view(web_of(request).background, job)


@router.get("/restores/{run_id}", summary="A restore started by the caller, and how far "
            "it got")
def restore_run(request: Request, run_id: int, who: PrincipalDep,
                vault: VaultDep) -> dict[str, Any]:
    """The restore's state (queued, running, done, stopped, failed, interrupted: the run
    was killed or serve stopped; start it again to resume), its progress in copies
    (``planned``, ``handled``: kept in the catalog as it runs), and its last run's report."""
    return restore_view(web_of(request).background,
                        restoring.restore_job(vault, who, run_id))
