"""The message page (``/messages/{id}``): headers, envelope and every arrival, SHA-256 and
its last verification (re-verify now), the text, attachments (download, inline preview of
text and images), the raw download and the conversation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mailvault.errors import NotFoundError
from mailvault.usecases import finding, verifying
from mailvault.web.downloads import attachment_response, raw_response
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep, web_of
from mailvault.web.message_view import AttachmentView, message_view

router = APIRouter(include_in_schema=False)


@router.get("/messages/{ref}")
def message_page(request: Request, ref: str, who: ViewerDep, vault: VaultDep,
                 verified: str = "") -> Response:
    view = message_view(vault, who.principal, ref)
    key = str(view.row.id)
    return web_of(request).templates.TemplateResponse(request, "message.html", {
        "viewer": who, "m": view, "check": verifying.last_check(vault, who.principal, key),
        "thread": finding.conversation(vault, who.principal, key), "just_verified": verified})


@router.get("/messages/{ref}/raw")
def message_raw(ref: str, who: ViewerDep, vault: VaultDep) -> Response:
    row, data = finding.raw_message(vault, who.principal, ref, f"web:{who.principal.name}")
    return raw_response(row, data)


@router.get("/messages/{ref}/attachments/{number}")
def message_attachment(ref: str, number: int, who: ViewerDep, vault: VaultDep) -> Response:
    _row, part = finding.attachment(vault, who.principal, ref, number,
                                    f"web:{who.principal.name}")
    return attachment_response(part)


@router.get("/messages/{ref}/attachments/{number}/view")
def attachment_view(request: Request, ref: str, number: int, who: ViewerDep,
                    vault: VaultDep) -> Response:
    """An attachment shown on a page of its own: an image inline, text as text."""
    row, part = finding.attachment(vault, who.principal, ref, number,
                                   f"web:{who.principal.name}")
    view = AttachmentView(
        part.number, part.filename, part.content_type, len(part.data), part.content_id)
    if not view.inline_kind:
        raise NotFoundError(f"part {number} of message {row.id} cannot be shown on a page: "
                            "download it instead.")
    return web_of(request).templates.TemplateResponse(request, "attachment.html", {
        "viewer": who, "row": row, "part": view,
        "text": part.text() if view.inline_kind == "text" else ""})


@router.get("/messages/{ref}/attachments/{number}/image")
def attachment_image(ref: str, number: int, who: ViewerDep, vault: VaultDep) -> Response:
    _row, part = finding.attachment(vault, who.principal, ref, number,
                                    f"web:{who.principal.name}")
    return attachment_response(part, inline=True)


@router.post("/messages/{ref}/verify")
def verify_now(ref: str, who: FormViewerDep, vault: VaultDep) -> Response:
    check = verifying.verify_message(vault, who.principal, ref)
    return RedirectResponse(f"/messages/{check.message_id}?verified=1#integrity",
                            status_code=303)
