"""``mailvault user`` (the people who use the archive: roles, passwords, TOTP) and
``mailvault token`` (API bearer tokens, shown once)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    console,
    errors,
    open_vault,
    principal,
    print_json,
)
from mailvault.password_files import read_password_file
from mailvault.usecases import people

user_app = typer.Typer(help="People who use the archive: roles, passwords, TOTP.",
                       no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens (each shown once, kept only as a hash).",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")


NameArg = Annotated[str, typer.Argument(help="The user's name (lower case; never reused).")]
PasswordFile = Annotated[Path | None, typer.Option(
    "--password-file", help="Read the password from this file's first line (else it is "
    "asked for twice).", show_default=False)]


@user_app.command("add")
def add(
    name: NameArg,
    role: Annotated[list[str], typer.Option(
        "--role", help="admin, auditor, reviewer or user (repeat for more than one).")],
    vault: VaultOption = None,
    address: Annotated[list[str] | None, typer.Option(
        "--address", help="One of the user's own mail addresses (repeatable; needed for the "
        "user role).", show_default=False)] = None,
    password_file: PasswordFile = None,
) -> None:
    """Add a user who signs in with a password (Argon2id hash kept, never the password)."""
    password = _password(password_file)
    with open_vault(vault) as opened:
        added = people.add_user(opened, principal(), name, role, address or [], password)
    roles = ", ".join(sorted(r.value for r in added.roles))
    console.print(f"Added user {added.name} ({roles})", highlight=False, markup=False)


@user_app.command("list")
def list_users(
    vault: VaultOption = None,
    json_out: JsonOption = False,
    all_users: Annotated[bool, typer.Option(
        "--all", help="Include removed users (kept for the audit trail).")] = False,
) -> None:
    """List the users, their roles, addresses and state."""
    with open_vault(vault) as opened:
        found = people.list_users(opened, principal(), include_removed=all_users)
    at = datetime.now(UTC)
    if json_out:
        print_json([u.to_json(at) for u in found])
        return
    table = Table("name", "roles", "addresses", "status", "totp", "last sign-in")
    for u in found:
        table.add_row(u.name, ", ".join(sorted(r.value for r in u.roles)),
                      ", ".join(u.addresses), u.status(at), "yes" if u.totp else "no",
                      _when(u.last_login_at))
    console.print(table)


@user_app.command("set")
def set_roles(
    name: NameArg,
    vault: VaultOption = None,
    role: Annotated[list[str] | None, typer.Option(
        "--role", help="The user's roles from now on (repeatable; replaces the old ones).",
        show_default=False)] = None,
    address: Annotated[list[str] | None, typer.Option(
        "--address", help="The user's own addresses from now on (repeatable; replaces the "
        "old ones).", show_default=False)] = None,
) -> None:
    """Change a user's roles or addresses (what is not given stays)."""
    with open_vault(vault) as opened:
        changed = people.update_user(opened, principal(), name, roles=role, addresses=address)
    roles = ", ".join(sorted(r.value for r in changed.roles))
    console.print(f"User {changed.name}: {roles}; {', '.join(changed.addresses) or 'no address'}",
                  highlight=False, markup=False)


@user_app.command("passwd")
def passwd(name: NameArg, vault: VaultOption = None, password_file: PasswordFile = None) -> None:
    """Set a new password for a user (this also ends a lock-out)."""
    password = _password(password_file)
    with open_vault(vault) as opened:
        people.set_password(opened, principal(), name, password)
    console.print(f"Changed the password of {name}", highlight=False, markup=False)


@user_app.command("disable")
def disable(name: NameArg, vault: VaultOption = None) -> None:
    """Refuse the user's sign-ins and tokens until 'user enable'."""
    with open_vault(vault) as opened:
        people.disable_user(opened, principal(), name)
    console.print(f"Disabled user {name}", highlight=False, markup=False)


@user_app.command("enable")
def enable(name: NameArg, vault: VaultOption = None) -> None:
    """Let a disabled or locked-out user sign in again."""
    with open_vault(vault) as opened:
        people.enable_user(opened, principal(), name)
    console.print(f"Enabled user {name}", highlight=False, markup=False)


@user_app.command("remove")
def remove(name: NameArg, vault: VaultOption = None) -> None:
    """Remove a user: sign-in, TOTP and tokens end; the name stays in the record for good."""
    with open_vault(vault) as opened:
        revoked = people.remove_user(opened, principal(), name)
    note = f", {revoked} token(s) revoked" if revoked else ""
    console.print(f"Removed user {name}{note}", highlight=False, markup=False)


@user_app.command("totp")
def totp(
    name: NameArg,
    vault: VaultOption = None,
    off: Annotated[bool, typer.Option("--off", help="Remove the TOTP second factor.")] = False,
) -> None:
    """Give the user a new TOTP secret and print its provisioning URI, this once."""
    with open_vault(vault) as opened:
        if off:
            people.disable_totp(opened, principal(), name)
            console.print(f"TOTP is off for {name}", highlight=False, markup=False)
            return
        uri = people.enable_totp(opened, principal(), name)
    errors.print(f"TOTP is on for {name}: give them this URI (or its QR code) now; it is "
                 "not shown again.", highlight=False, markup=False)
    typer.echo(uri)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    vault: VaultOption = None,
    expires: Annotated[int | None, typer.Option(
        "--expires", help="Days until it expires (default: [accounts] token_expires_days; "
        "0: never).", show_default=False)] = None,
) -> None:
    """Make an API token and print it, this once (only its hash is kept)."""
    with open_vault(vault) as opened:
        made = people.create_token(opened, principal(), user, expires)
    until = f"expires {_when(made.expires_at)}" if made.expires_at else "never expires"
    errors.print(f"Token {made.id} for {made.user} ({until}); it is not shown again.",
                 highlight=False, markup=False)
    typer.echo(made.token)


@token_app.command("list")
def token_list(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """List API tokens (never the tokens themselves)."""
    with open_vault(vault) as opened:
        found = people.list_tokens(opened, principal())
    at = datetime.now(UTC)
    if json_out:
        print_json([t.to_json(at) for t in found])
        return
    table = Table("id", "user", "status", "created", "expires", "last used", "created by")
    for t in found:
        table.add_row(str(t.id), t.user, t.status(at), _when(t.created_at),
                      _when(t.expires_at) or "never", _when(t.last_used_at), t.created_by)
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see 'mailvault token list').")],
    vault: VaultOption = None,
) -> None:
    """Revoke an API token."""
    with open_vault(vault) as opened:
        changed = people.revoke_token(opened, principal(), token_id)
    console.print(f"Revoked token {token_id}" if changed else
                  f"Token {token_id} was revoked already", highlight=False)


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        return read_password_file(password_file)
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""
