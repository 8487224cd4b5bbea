"""The administration pages' common ground and the index (``/admin``): which sections the
viewer may use, and how every admin page renders and says what a form just did.

Each section lives in a module of its own (``pages_admin_sources.py``,
``pages_admin_compliance.py``, ``pages_admin_people.py``, ``pages_admin_gateway.py``); every
form there posts with the session's CSRF token (``FormViewerDep``), calls one use case with
the viewer's principal (the use case checks the role and writes the audit entry), then
redirects to its page with a notice named in NOTICES (Post/Redirect/Get: reloading never
repeats an action). An error is the error page's one sentence.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mailvault.accounts.principal import Principal, allows
from mailvault.accounts.roles import Permission
from mailvault.errors import InputError, PermissionDenied
from mailvault.web.identity import Viewer, ViewerDep, web_of

router = APIRouter(include_in_schema=False)

# (path, title, what it holds, the permission it needs): the index shows what the viewer may use.
SECTIONS = (
    ("/admin/sources", "Sources", "IMAP and POP3 mailboxes: add, test, sync now",
     Permission.SOURCES),
    ("/admin/retention", "Retention", "how long mail is kept", Permission.RETENTION),
    ("/admin/holds", "Legal holds", "mail that must not be disposed of", Permission.HOLDS),
    ("/admin/lifecycle", "Lifecycle", "tier rules and moves", Permission.LIFECYCLE),
    ("/admin/users", "Users", "people, roles, addresses and passwords", Permission.USERS),
    ("/admin/smtp-users", "SMTP users", "who may send mail to the capture endpoint",
     Permission.USERS),
    ("/admin/gateway", "Gateway", "encrypted gateway mailboxes and their states",
     Permission.MONITOR),
)
# What a redirect's ?done= says, with {name} filled in; a key not listed says nothing, so a
# crafted link cannot put words on the archive's page.
NOTICES = {
    "source-added": "Source {name} added: test its connection, then sync it.",
    "source-removed": "Source {name} removed (its archived mail stays).",
    "policy-added": "Retention policy {name} added; retain-until dates recomputed.",
    "policy-removed": "Retention policy {name} removed; retain-until dates recomputed.",
    "default-changed": "The default retention policy is now {name}.",
    "recomputed": "Retain-until dates recomputed: {name} changed.",
    "hold-placed": "Hold {name} placed.",
    "hold-released": "Hold {name} released.",
    "lifecycle-run": "Lifecycle pass done: {name}.",
    "moved": "Tier move done: {name}.",
    "user-added": "User {name} added.",
    "user-updated": "User {name} updated.",
    "password-set": "New password set for {name}.",
    "user-disabled": "User {name} disabled: their sessions and tokens stop working.",
    "user-enabled": "User {name} enabled.",
    "user-removed": "User {name} removed.",
    "totp-disabled": "TOTP removed for {name}.",
    "smtp-user-added": "SMTP user {name} saved.",
    "smtp-user-removed": "SMTP user {name} removed.",
    "mailbox-suspended": "Gateway mailbox {name} suspended: it takes no new mail.",
    "mailbox-resumed": "Gateway mailbox {name} resumed.",
}


def sections_for(who: Principal) -> list[tuple[str, str, str]]:
    """The sections a principal's roles let them use: (path, title, description)."""
    return [(path, title, text) for path, title, text, needed in SECTIONS
            if allows(who, needed)]


def page(request: Request, who: Viewer, template: str, **context: Any) -> Response:
    """An admin page, with the notice its ?done= names."""
    done = request.query_params.get("done", "")
    notice = NOTICES.get(done, "").format(name=request.query_params.get("name", ""))
    return web_of(request).templates.TemplateResponse(request, template, {
        "viewer": who, "sections": sections_for(who.principal), "notice": notice,
        **context})


def done(path: str, what: str, name: object) -> Response:
    """After a form: back to its page, which says ``NOTICES[what]``."""
    return RedirectResponse(f"{path}?{urlencode({'done': what, 'name': str(name)})}",
                            status_code=303)


def optional_int(label: str, text: str) -> int | None:
    """A form's number field: empty is None, anything else must be a whole number."""
    if not text.strip():
        return None
    if not text.strip().isascii() or not text.strip().isdigit():
        raise InputError(f"the {label} must be a whole number, not {text!r}.")
    return int(text)


def words(text: str) -> list[str]:
    """A form's list field: values separated by spaces, commas or new lines."""
    return [w for w in text.replace(",", " ").split() if w]


@router.get("/admin")
def admin_index(request: Request, who: ViewerDep) -> Response:
    if not sections_for(who.principal):
        raise PermissionDenied(f"{who.principal.name} may not use the administration pages "
                               "(that needs the role admin or auditor).")
    return page(request, who, "admin/index.html")
