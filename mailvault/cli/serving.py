"""`mailvault serve` (SMTP endpoint, milter, and whatever else mailvault/serve.py lists) and
`mailvault smtp-user` (the users SMTP AUTH accepts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mailvault.accounts import users
from mailvault.capture import users as smtp_users
from mailvault.cli.app import JsonOption, VaultOption, actor, open_vault, print_json, print_line
from mailvault.compliance import audit
from mailvault.serve import run_until_signalled
from mailvault.store import file_modes
from mailvault.vault import Vault, default_vault_path
from mailvault.web.service import web_url

smtp_user_app = typer.Typer(help="Users that may log in to the SMTP endpoint (SMTP AUTH).",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(smtp_user_app, name="smtp-user")
    smtp_user_app.command("add")(user_add)
    smtp_user_app.command("list")(user_list)
    smtp_user_app.command("remove")(user_remove)


def serve(
    vault: VaultOption = None,
    smtp: Annotated[list[str] | None, typer.Option(
        "--smtp", help="HOST:PORT for SMTP, instead of [smtp] listen (repeat for more).",
        show_default=False)] = None,
    milter: Annotated[list[str] | None, typer.Option(
        "--milter", help="HOST:PORT for the milter, instead of [milter] listen.",
        show_default=False)] = None,
    web: Annotated[list[str] | None, typer.Option(
        "--web", help="HOST:PORT for the web application, instead of [web] listen.",
        show_default=False)] = None,
    init: Annotated[bool, typer.Option(
        "--init", help="First create the vault if there is none and, if it has no user yet, "
        "an administrator (also auditor) named admin whose password is printed once.")
    ] = False,
) -> None:
    """Run the SMTP journal endpoint, the web application, the milter and the scheduler
    until stopped (Ctrl-C or SIGTERM)."""
    if init:
        _initialise(vault or default_vault_path())
    overrides: dict[str, list[str]] = {}
    if web:
        overrides["web"] = web
    if smtp:
        overrides["smtp"] = smtp
    if milter:
        overrides["milter"] = milter
    who = actor()
    with open_vault(vault) as opened:

        def ready(endpoints: list[str]) -> None:
            with opened.engine.begin() as conn:
                audit.record(conn, who, "serve", {"endpoints": endpoints})
            for endpoint in endpoints:
                print(f"listening: {endpoint}", flush=True)
            for endpoint in endpoints:
                if endpoint.startswith("web "):
                    url = web_url(endpoint, bool(opened.settings.web.tls_cert))
                    print(f"open {url} in a browser", flush=True)

        run_until_signalled(opened, overrides, ready, who)
    print("stopped", flush=True)


def _initialise(path: Path) -> None:
    """`serve --init`: the vault and its first administrator, when missing."""
    if not (path / "keys").is_dir():
        with file_modes.owner_only_umask():
            Vault.create(path).close()
        print_line(f"Created a vault in {path.resolve()}; keep a copy of "
                   f"{path.resolve() / 'keys'} somewhere safe.")
    with open_vault(path) as opened:
        password = users.add_first_administrator(opened, actor())
    if password is not None:
        print_line(f"Created the administrator '{users.FIRST_ADMIN}' (also auditor) with the "
                   f"password {password} (shown only now; change it with 'mailvault user "
                   f"passwd {users.FIRST_ADMIN}').")


def user_add(
    name: Annotated[str, typer.Argument(help="User name the MTA logs in with.")],
    vault: VaultOption = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Add an SMTP user, or set a new password (kept as an Argon2id hash)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_vault(vault) as opened:
        new = smtp_users.add_user(opened.path, name, password)
        with opened.engine.begin() as conn:
            audit.record(conn, actor(), "smtp-user add" if new else "smtp-user password",
                         {"user": name})
    print_line(f"{'Added' if new else 'Changed the password of'} SMTP user {name}")


def user_list(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """List the SMTP users."""
    with open_vault(vault) as opened:
        names = sorted(smtp_users.load_users(opened.path))
    if json_out:
        print_json(names)
        return
    for name in names:
        print_line(name)


def user_remove(
    name: Annotated[str, typer.Argument(help="User to remove.")],
    vault: VaultOption = None,
) -> None:
    """Remove an SMTP user."""
    with open_vault(vault) as opened:
        smtp_users.remove_user(opened.path, name)
        with opened.engine.begin() as conn:
            audit.record(conn, actor(), "smtp-user remove", {"user": name})
    print_line(f"Removed SMTP user {name}")
