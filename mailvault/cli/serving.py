"""`mailvault serve` (SMTP endpoint, milter, and whatever else mailvault/serve.py lists) and
`mailvault smtp-user` (the users SMTP AUTH accepts)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.usecases import people, serving, vaults

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
    smtp_proxy: Annotated[list[str] | None, typer.Option(
        "--smtp-proxy", help="HOST:PORT for the gateway's SMTP proxy, instead of \\[gateway] "
        "smtp_proxy_listen (repeat for more).", show_default=False)] = None,
    milter: Annotated[list[str] | None, typer.Option(
        "--milter", help="HOST:PORT for the milter, instead of [milter] listen.",
        show_default=False)] = None,
    web: Annotated[list[str] | None, typer.Option(
        "--web", help="HOST:PORT for the web application, instead of [web] listen.",
        show_default=False)] = None,
    pop3: Annotated[list[str] | None, typer.Option(
        "--pop3", help="HOST:PORT for the gateway's POP3 service, instead of [gateway] "
        "pop3_listen.", show_default=False)] = None,
    pop3_proxy: Annotated[list[str] | None, typer.Option(
        "--pop3-proxy", help="HOST:PORT for the POP3 proxy, instead of [gateway] "
        "pop3_proxy_listen.", show_default=False)] = None,
    init: Annotated[bool, typer.Option(
        "--init", help="First create the vault if there is none and, if it has no user yet, "
        "an administrator (also auditor) named admin whose password is printed once.")
    ] = False,
) -> None:
    """Run the SMTP journal endpoint, the web application, the milter and the scheduler
    until stopped (Ctrl-C or SIGTERM)."""
    # Imported here: the web stack (FastAPI, uvicorn, pydantic) doubles the start-up time of
    # every other command, which never serves.
    from mailvault.serve import run_until_signalled
    from mailvault.web.service import web_service, web_url

    if init:
        _initialise(vault)
    overrides: dict[str, list[str]] = {}
    if web:
        overrides["web"] = web
    if smtp:
        overrides["smtp"] = smtp
    if smtp_proxy:
        overrides["smtp_proxy"] = smtp_proxy
    if milter:
        overrides["milter"] = milter
    if pop3:
        overrides["pop3"] = pop3
    if pop3_proxy:
        overrides["pop3-proxy"] = pop3_proxy

    with open_vault(vault) as opened:
        tls = bool(opened.settings.web.tls_cert)

        def ready(endpoints: list[str]) -> None:
            for endpoint in endpoints:
                print(f"listening: {endpoint}", flush=True)
            for endpoint in endpoints:
                if endpoint.startswith("web "):
                    print(f"open {web_url(endpoint, tls)} in a browser", flush=True)

        serving.serve(opened, principal(), overrides, ready,
                      functools.partial(run_until_signalled, faces=(web_service,)))
    print("stopped", flush=True)


def _initialise(path: Path | None) -> None:
    """`serve --init`: the vault and its first administrator, when missing."""
    created = vaults.create_if_missing(path)
    if created is not None:
        print_line(f"Created a vault in {created}; keep a copy of {created / 'keys'} "
                   "somewhere safe.")
    with open_vault(path) as opened:
        password = people.add_first_administrator(opened, principal())
    if password is not None:
        print_line(f"Created the administrator 'admin' (also auditor) with the password "
                   f"{password} (shown only now; change it with 'mailvault user passwd "
                   "admin').")


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
        new = people.add_smtp_user(opened, principal(), name, password)
    print_line(f"{'Added' if new else 'Changed the password of'} SMTP user {name}")


def user_list(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """List the SMTP users."""
    with open_vault(vault) as opened:
        names = people.list_smtp_users(opened, principal())
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
        people.remove_smtp_user(opened, principal(), name)
    print_line(f"Removed SMTP user {name}")
