"""`mailvault serve` (SMTP endpoint, milter, and whatever else mailvault/serve.py lists) and
`mailvault smtp-user` (the users SMTP AUTH accepts)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mailvault.capture import users
from mailvault.cli.app import JsonOption, VaultOption, actor, open_vault, print_json, print_line
from mailvault.compliance import audit
from mailvault.serve import run_until_signalled
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
) -> None:
    """Run the SMTP journal endpoint, the web application, the milter and the scheduler
    until stopped (Ctrl-C or SIGTERM)."""
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
        new = users.add_user(opened.path, name, password)
        with opened.engine.begin() as conn:
            audit.record(conn, actor(), "smtp-user add" if new else "smtp-user password",
                         {"user": name})
    print_line(f"{'Added' if new else 'Changed the password of'} SMTP user {name}")


def user_list(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """List the SMTP users."""
    with open_vault(vault) as opened:
        names = sorted(users.load_users(opened.path))
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
        users.remove_user(opened.path, name)
        with opened.engine.begin() as conn:
            audit.record(conn, actor(), "smtp-user remove", {"user": name})
    print_line(f"Removed SMTP user {name}")
