"""Users and roles (``/admin/users``) and the capture endpoint's SMTP users
(``/admin/smtp-users``), the administrator's.

A user is added with roles, addresses and a first password; their page changes roles and
addresses, sets a new password (ending a lock-out), disables or enables them, removes their
TOTP factor, and removes them for good. The accounts capability refuses to leave the archive
without an enabled administrator, and audits every change (``user-*``, ``smtp-user *``).
Passwords are typed into password fields and never shown back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mailvault.accounts.roles import Role
from mailvault.errors import InputError, NotFoundError
from mailvault.usecases import people
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep
from mailvault.web.pages_admin import done, page, words

router = APIRouter(include_in_schema=False)
USERS = "/admin/users"
SMTP_USERS = "/admin/smtp-users"
Text = Annotated[str, Form()]
Roles = Annotated[list[str] | None, Form()]
ROLES = [role.value for role in Role]


def _same_twice(password: str, again: str) -> str:
    """The new password, once both fields agree (the form asks twice, as the CLI does)."""
    if password != again:
        raise InputError("the two passwords differ: type the same password twice.")
    return password


@router.get(USERS)
def users_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "admin/users.html", roles=ROLES, now=datetime.now(UTC),
                users=people.list_users(vault, who.principal))


@router.post(USERS)
def add_user(who: FormViewerDep, vault: VaultDep, name: Text = "", roles: Roles = None,
             addresses: Text = "", password: Text = "", password_again: Text = "") -> Response:
    added = people.add_user(vault, who.principal, name, roles or [], words(addresses),
                            _same_twice(password, password_again))
    return done(f"{USERS}/{added.name}", "user-added", added.name)


@router.get(USERS + "/{name}")
def user_page(request: Request, name: str, who: ViewerDep, vault: VaultDep) -> Response:
    found = [u for u in people.list_users(vault, who.principal) if u.name == name.lower()]
    if not found:
        raise NotFoundError(f"there is no user named {name!r}.")
    return page(request, who, "admin/user.html", user=found[0], roles=ROLES,
                now=datetime.now(UTC))


@router.post(USERS + "/{name}")
def update_user(name: str, who: FormViewerDep, vault: VaultDep, roles: Roles = None,
                addresses: Text = "") -> Response:
    updated = people.update_user(vault, who.principal, name, roles=roles or [],
                                 addresses=words(addresses))
    return done(f"{USERS}/{updated.name}", "user-updated", updated.name)


@router.post(USERS + "/{name}/password")
def set_password(name: str, who: FormViewerDep, vault: VaultDep, password: Text = "",
                 password_again: Text = "") -> Response:
    people.set_password(vault, who.principal, name, _same_twice(password, password_again))
    return done(f"{USERS}/{name}", "password-set", name)


@router.post(USERS + "/{name}/disable")
def disable_user(name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    people.disable_user(vault, who.principal, name)
    return done(f"{USERS}/{name}", "user-disabled", name)


@router.post(USERS + "/{name}/enable")
def enable_user(name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    people.enable_user(vault, who.principal, name)
    return done(f"{USERS}/{name}", "user-enabled", name)


@router.post(USERS + "/{name}/totp/remove")
def remove_totp(name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    people.disable_totp(vault, who.principal, name)
    return done(f"{USERS}/{name}", "totp-disabled", name)


@router.post(USERS + "/{name}/remove")
def remove_user(name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    people.remove_user(vault, who.principal, name)
    return done(USERS, "user-removed", name)


@router.get(SMTP_USERS)
def smtp_users_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "admin/smtp_users.html",
                smtp_users=people.list_smtp_users(vault, who.principal))


@router.post(SMTP_USERS)
def add_smtp_user(who: FormViewerDep, vault: VaultDep, name: Text = "", password: Text = "",
                  password_again: Text = "") -> Response:
    people.add_smtp_user(vault, who.principal, name.strip(),
                         _same_twice(password, password_again))
    return done(SMTP_USERS, "smtp-user-added", name.strip())


@router.post(SMTP_USERS + "/{name:path}/remove")
def remove_smtp_user(name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    people.remove_smtp_user(vault, who.principal, name)
    return done(SMTP_USERS, "smtp-user-removed", name)
