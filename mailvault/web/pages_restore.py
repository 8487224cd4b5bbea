"""The restore page (``/restore``): the messages of a query APPENDed into a mailbox over
IMAP, for those the restore use case allows (auditors; users for their own mail when
``[restore] users_own_mail`` is on). The search page links to it with its query.

The restore runs in the serving process's job worker (background.py), not in the request:
the form answers at once, and the page lists the viewer's restores with their progress and
report (reload to follow one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailvault.accounts.principal import Principal
from mailvault.errors import PermissionDenied
from mailvault.usecases import restoring
from mailvault.vault import Vault
from mailvault.web.background import restore_in_background, restore_view
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep, web_of

router = APIRouter(include_in_schema=False)


def _allowed(vault: Vault, who: Principal) -> None:
    if not restoring.may_restore(vault, who):
        raise PermissionDenied(f"{who.name} may not restore mail into a mailbox.")


@router.get("/restore")
def restore_form(request: Request, who: ViewerDep, vault: VaultDep, q: str = "") -> Response:
    """The form: the query, the mailbox, its password, TLS and the folder mode."""
    _allowed(vault, who.principal)
    web = web_of(request)
    return web.templates.TemplateResponse(request, "restore.html", {
        "viewer": who, "q": q, "runs": [
            restore_view(web.background, job)
            for job in restoring.restores(vault, who.principal)]})


@router.post("/restore")
def restore(request: Request, who: FormViewerDep, vault: VaultDep,
            imap: Annotated[str, Form()], user: Annotated[str, Form()],
            password: Annotated[str, Form()], q: Annotated[str, Form()] = "",
            tls: Annotated[str, Form()] = "implicit",
            folder_mode: Annotated[str, Form()] = "keep",
            ca_file: Annotated[str, Form()] = "") -> Response:
    """Queue the restore and come back to the page, which shows how far it got (start it
    again to resume one that stopped)."""
    _allowed(vault, who.principal)
    target = restoring.target(imap, tls, user, ca_file.strip() or None)
    restore_in_background(web_of(request).background, vault, who.principal, q, target,
                          password, restoring.folder_mode(folder_mode))
    return RedirectResponse("/restore", status_code=303)
