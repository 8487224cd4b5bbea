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

from mailvault.fsnames import exact_json
from mailvault.mime_leaves import leaves
from mailvault.usecases import finding, saved_searches, verifying
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
