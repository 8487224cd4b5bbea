"""Sources (``/admin/sources``, the administrator's): every IMAP and POP3 source with its last
and next run, a form to add one, and per source: test the connection, sync now, remove.

The password (or an OAuth2 application's client secret: the form offers client credentials,
never a token command, which would run a program the browser named) is typed into a password
field, sealed by the vault's keyring as the command line does
(``usecases.sources.add_source``), and never sent back to the browser. Under ``serve`` a sync
hands what it fetches to the spool (the archiver is the vault's one writer), so its page
counts messages spooled, not yet archived.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mailvault.usecases import sources
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep, web_of
from mailvault.web.pages_admin import done, optional_int, page, words

router = APIRouter(include_in_schema=False)
HERE = "/admin/sources"
Text = Annotated[str, Form()]
Flag = Annotated[bool, Form()]


def definition(values: dict[str, Any]) -> dict[str, Any]:
    """A source definition from the form's fields: only those of its kind, so that a field
    the form shows for the other protocol cannot make it invalid."""
    kind = values.get("kind", "")
    common = ("name", "kind", "host", "port", "tls", "user", "ca_file",
              "insecure_skip_verify", "scope", "users_file", "domain", "auth",
              "master_separator", "interval", "cron")
    only = {"imap": ("include", "exclude", "special_use", "since", "before", "tenant",
                     "token_url", "client_id"),
            "pop3": ("delete_after_archive",)}.get(kind, ())
    return {key: values[key] for key in (*common, *only)
            if key in values and values[key] not in ("", None)}


@router.get(HERE)
def sources_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "admin/sources.html",
                sources=sources.list_sources(vault, who.principal))


@router.post(HERE)
def add_source(who: FormViewerDep, vault: VaultDep, kind: Text = "imap", name: Text = "",
               host: Text = "", port: Text = "", tls: Text = "implicit", user: Text = "",
               password: Text = "", ca_file: Text = "", insecure_skip_verify: Flag = False,
               scope: Text = "mailbox", users_file: Text = "", domain: Text = "",
               auth: Text = "login", include: Text = "", exclude: Text = "",
               special_use: Text = "", since: Text = "", before: Text = "",
               interval: Text = "", cron: Text = "", tenant: Text = "",
               token_url: Text = "", client_id: Text = "",
               delete_after_archive: Flag = False) -> Response:
    spec = sources.check_definition(definition({
        "name": name.strip(), "kind": kind, "host": host.strip(),
        "port": optional_int("port", port), "tls": tls, "user": user.strip(),
        "ca_file": ca_file.strip(), "insecure_skip_verify": insecure_skip_verify,
        "scope": scope, "users_file": users_file.strip(), "domain": domain.strip(),
        "auth": auth, "include": words(include), "exclude": words(exclude),
        "special_use": words(special_use), "since": since.strip(), "before": before.strip(),
        "interval": interval.strip(), "cron": cron.strip(), "tenant": tenant.strip(),
        "token_url": token_url.strip(), "client_id": client_id.strip(),
        "delete_after_archive": delete_after_archive}))
    sources.add_source(vault, who.principal, spec, password)
    return done(HERE, "source-added", spec.name)


@router.post(HERE + "/{name}/test")
def check_source(request: Request, name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    check = sources.check_connection(vault, who.principal, name)
    return web_of(request).templates.TemplateResponse(request, "admin/source_result.html", {
        "viewer": who, "check": check, "reports": None})


@router.post(HERE + "/{name}/sync")
def sync_source(request: Request, name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    web = web_of(request)
    reports = sources.sync_now(vault, who.principal, name, sink=web.sink)
    return web.templates.TemplateResponse(request, "admin/source_result.html", {
        "viewer": who, "check": None, "reports": reports, "spooled": web.sink is not None})


@router.post(HERE + "/{name}/remove")
def remove_source(name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    sources.remove_source(vault, who.principal, name)
    return done(HERE, "source-removed", name)
