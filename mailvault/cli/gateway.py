"""``mailvault gateway mailbox ...``: the gateway's encrypted mailboxes.

A mailbox's password is printed once, by ``create`` (and by ``passwd`` when it makes the new
one), and kept nowhere: a lost password means the mailbox's mail is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    console,
    human_bytes,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.password_files import read_password_file
from mailvault.usecases import gateway

gateway_app = typer.Typer(help="The gateway: encrypted mailboxes that hold mail until it is "
                          "pulled.", no_args_is_help=True)
mailbox_app = typer.Typer(help="Gateway mailboxes (each encrypted with its own password).",
                          no_args_is_help=True)
LOST_PASSWORD = ("Keep this password: it is shown once and stored nowhere. If it is lost, "
                 "the mail in this mailbox is lost with it.")


def register(app: typer.Typer) -> None:
    gateway_app.add_typer(mailbox_app, name="mailbox")
    app.add_typer(gateway_app, name="gateway")


IdArg = Annotated[str, typer.Argument(help="The mailbox id (the part of its address before @).")]


@mailbox_app.command("create")
def create(
    vault: VaultOption = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="A label for people (e.g. 'journal from Microsoft 365').",
        show_default=False)] = None,
    json_out: JsonOption = False,
) -> None:
    """Create a mailbox; its random password is printed once and cannot be recovered."""
    with open_vault(vault) as opened:
        info, password = gateway.create_mailbox(opened, principal(), name)
    if json_out:
        print_json({"id": info.id, "address": info.address, "password": password})
        return
    print_line(f"Created gateway mailbox {info.id}")
    print_line(f"address:  {info.address or '(set [gateway] domain to give it one)'}")
    print_line(f"password: {password}")
    print_line(LOST_PASSWORD)


@mailbox_app.command("list")
def list_mailboxes(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """The mailboxes: state, messages, bytes, oldest message, last pull."""
    with open_vault(vault) as opened:
        found = gateway.list_mailboxes(opened, principal())
    if json_out:
        print_json([info.to_json() for info in found])
        return
    table = Table("id", "name", "address", "state", "messages", "bytes", "oldest", "last pull")
    for info in found:
        table.add_row(info.id, info.name, info.address, info.state, str(info.count),
                      human_bytes(info.bytes), info.oldest or "-", info.last_pull or "never")
    console.print(table)


@mailbox_app.command("show")
def show(mailbox_id: IdArg, vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """One mailbox's state and figures."""
    with open_vault(vault) as opened:
        info = gateway.show_mailbox(opened, principal(), mailbox_id)
    if json_out:
        print_json(info.to_json())
        return
    for key, value in info.to_json().items():
        print_line(f"{key + ':':<10} {'-' if value is None else value}")


@mailbox_app.command("suspend")
def suspend(mailbox_id: IdArg, vault: VaultOption = None) -> None:
    """Take no new mail for the mailbox (550); what it holds can still be pulled."""
    with open_vault(vault) as opened:
        gateway.set_state(opened, principal(), mailbox_id, suspended=True)
    print_line(f"Suspended gateway mailbox {mailbox_id}")


@mailbox_app.command("resume")
def resume(mailbox_id: IdArg, vault: VaultOption = None) -> None:
    """Take mail for a suspended mailbox again."""
    with open_vault(vault) as opened:
        gateway.set_state(opened, principal(), mailbox_id, suspended=False)
    print_line(f"Resumed gateway mailbox {mailbox_id}")


@mailbox_app.command("delete")
def delete(mailbox_id: IdArg, vault: VaultOption = None) -> None:
    """Delete a mailbox that is suspended and empty."""
    with open_vault(vault) as opened:
        gateway.delete_mailbox(opened, principal(), mailbox_id)
    print_line(f"Deleted gateway mailbox {mailbox_id}")


@mailbox_app.command("passwd")
def passwd(
    mailbox_id: IdArg,
    vault: VaultOption = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="The current password, from this file's first line (else "
        "it is asked for).", show_default=False)] = None,
    new_password_file: Annotated[Path | None, typer.Option(
        "--new-password-file", help="The new password, from this file's first line (else a "
        "random one is made and printed once).", show_default=False)] = None,
) -> None:
    """Change a mailbox's password (the current one is needed); its mail stays readable."""
    old = (read_password_file(password_file) if password_file
           else typer.prompt("Current mailbox password", hide_input=True))
    new = read_password_file(new_password_file) if new_password_file else \
        gateway.new_password()
    with open_vault(vault) as opened:
        gateway.change_password(opened, principal(), mailbox_id, old, new)
    print_line(f"Changed the password of gateway mailbox {mailbox_id}")
    if not new_password_file:
        print_line(f"new password: {new}")
        print_line(LOST_PASSWORD)
