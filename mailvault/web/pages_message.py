"""The message page (``/messages/{id}``): headers, envelope and every arrival, SHA-256 and
its last verification (re-verify now), the text, the HTML view, attachments (download, inline
preview of text and images), the raw download and the conversation.

The HTML view is an ``<iframe sandbox>`` of ``/messages/{id}/html``: the body made safe by
``mail_html.render`` and served with ``mail_html.frame_csp``; its ``cid:`` images come from
``/messages/{id}/parts/{n}`` links that prove themselves (``part_links.py``). Remote images
stay out until the reader asks for them for that message (a POST, audited); the session then
remembers the choice.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailvault.accounts import sessions
from mailvault.accounts.principal import allows
from mailvault.accounts.roles import Permission
from mailvault.errors import NotFoundError
from mailvault.mime_leaves import leaves
from mailvault.usecases import finding, holds, verifying
from mailvault.web import mail_html
from mailvault.web.downloads import attachment_response, raw_response
from mailvault.web.identity import FormViewerDep, VaultDep, Viewer, ViewerDep, web_of
from mailvault.web.message_view import AttachmentView, message_view

router = APIRouter(include_in_schema=False)


@router.get("/messages/{ref}")
def message_page(request: Request, ref: str, who: ViewerDep, vault: VaultDep,
                 verified: str = "") -> Response:
    view = message_view(vault, who.principal, ref)
    key = str(view.row.id)
    remote_allowed = view.row.id in who.session.remote_images
    rendered = mail_html.render(view.leaves, part_url=_part_url(request, who, view.row.id),
                                allow_remote_images=remote_allowed)
    return web_of(request).templates.TemplateResponse(request, "message.html", {
        "viewer": who, "m": view, "check": verifying.last_check(vault, who.principal, key),
        "thread": finding.conversation(vault, who.principal, key), "just_verified": verified,
        "html": rendered, "remote_allowed": remote_allowed,
        "sandbox": mail_html.IFRAME_SANDBOX,
        # Only to those who manage holds: a hold's name can tell of a matter under way.
        "holds": holds.holds_on(vault, who.principal, key)
        if allows(who.principal, Permission.HOLDS) else None})


def _part_url(request: Request, who: Viewer, message_id: int) -> Callable[[int], str]:
    links = web_of(request).part_links
    return lambda number: links.link(who.session, message_id, number)


@router.get("/messages/{ref}/html")
def message_html(request: Request, ref: str, who: ViewerDep, vault: VaultDep) -> Response:
    """The message's HTML made safe, for the sandboxed frame of its page."""
    opened = finding.open_message(vault, who.principal, ref)
    row = opened.row
    allowed = row.id in who.session.remote_images
    rendered = mail_html.render(leaves(opened.raw), part_url=_part_url(request, who, row.id),
                                allow_remote_images=allowed)
    if rendered is None:
        raise NotFoundError(f"message {row.id} has no HTML body.")
    return HTMLResponse(rendered.html, headers={
        "content-security-policy": mail_html.frame_csp(allowed),
        "referrer-policy": "no-referrer", "x-content-type-options": "nosniff"})


@router.get("/messages/{ref}/parts/{number}")
def message_part(request: Request, ref: int, number: int, vault: VaultDep,
                 s: int = 0, e: int = 0, k: str = "") -> Response:
    """A part the mail frame shows (a cid: image): authorised by its link, not a cookie."""
    web = web_of(request)
    web.part_links.check(s, ref, number, e, k)
    session = sessions.by_id(vault, s, web.settings.session_idle_minutes * 60,
                             web.settings.session_max_hours * 3600)
    _row, part = finding.attachment(vault, session.principal, str(ref), number, "web-frame")
    response = attachment_response(part, inline=True)
    # Asked for by the frame's opaque origin: a same-origin resource policy would block it.
    response.headers["cross-origin-resource-policy"] = "cross-origin"
    return response


@router.post("/messages/{ref}/remote-images")
def load_remote_images(ref: str, who: FormViewerDep, vault: VaultDep) -> Response:
    """Show this message's remote images from now on in this session (audited)."""
    row = finding.allow_remote_images(vault, who.principal, ref)
    sessions.allow_remote_images(vault, who.session, row.id)
    return RedirectResponse(f"/messages/{row.id}#html", status_code=303)


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
