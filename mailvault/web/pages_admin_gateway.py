"""Gateway mailboxes (``/admin/gateway``, the administrator's): every mailbox with its state,
message count, bytes, oldest message and last pull, and a button to suspend or resume one.

Creating a mailbox and changing its password stay on the command line
(``mailvault gateway mailbox create``): the one-time password is shown there, never on a page
that a browser may keep in its history or cache.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailvault.usecases import gateway
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep
from mailvault.web.pages_admin import done, page

router = APIRouter(include_in_schema=False)
HERE = "/admin/gateway"


@router.get(HERE)
def gateway_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "admin/gateway.html",
                mailboxes=gateway.list_mailboxes(vault, who.principal),
                domain=vault.settings.gateway.domain)


@router.post(HERE + "/{mailbox_id}/suspend")
def suspend(mailbox_id: str, who: FormViewerDep, vault: VaultDep) -> Response:
    gateway.set_state(vault, who.principal, mailbox_id, suspended=True)
    return done(HERE, "mailbox-suspended", mailbox_id)


@router.post(HERE + "/{mailbox_id}/resume")
def resume(mailbox_id: str, who: FormViewerDep, vault: VaultDep) -> Response:
    gateway.set_state(vault, who.principal, mailbox_id, suspended=False)
    return done(HERE, "mailbox-resumed", mailbox_id)
