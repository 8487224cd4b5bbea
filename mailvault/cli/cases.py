"""``mailvault case``: eDiscovery cases (custodians, saved queries, holds, notes)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mailvault.cli.app import (
    QUERY_COMMAND,
    JsonOption,
    VaultOption,
    console,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.cli.terminal_text import cell
from mailvault.usecases import cases

case_group = typer.Typer(help="eDiscovery cases: custodians, queries, holds, notes, exports.",
                         no_args_is_help=True)
CaseName = Annotated[str, typer.Argument(help="The case's name.")]


def register(app: typer.Typer) -> None:
    app.add_typer(case_group, name="case")


@case_group.command("create")
def create(name: CaseName,
           description: Annotated[str, typer.Option(help="What the case is about.")] = "",
           vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Open a new case."""
    with open_vault(vault) as opened:
        case = cases.create_case(opened, principal(), name, description)
    if json_out:
        print_json(case.to_json())
    else:
        print_line(f"case {case.name!r} opened (id {case.id})")


@case_group.command("list")
def list_cases(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Every case, open and closed."""
    with open_vault(vault) as opened:
        found = cases.list_cases(opened, principal())
    if json_out:
        print_json([c.to_json() for c in found])
        return
    table = Table()
    for column in ("id", "name", "state", "created by", "created"):
        table.add_column(column)
    for c in found:
        table.add_row(str(c.id), cell(c.name), c.state, cell(c.created_by),
                      c.created_at.strftime("%Y-%m-%d") if c.created_at else "")
    console.print(table)


@case_group.command("show")
def show(name: CaseName, vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """A case: custodians and queries with their counts, holds, notes, exports, and its
    chain of custody (every audit entry that touched it)."""
    with open_vault(vault) as opened:
        view = cases.show_case(opened, principal(), name)
    if json_out:
        print_json(view.to_json())
        return
    case = view.case
    print_line(f"case {case.name} ({case.state}), opened by {case.created_by}")
    if case.description:
        print_line(f"  {case.description}")
    for item, count in view.custodians:
        print_line(f"custodian {item.value}: {count} messages")
    for item, count in view.queries:
        print_line(f"query {item.name}: {item.value}  ({count} messages)")
    for held in view.holds:
        state = "active" if held.hold.active else "released"
        print_line(f"hold {held.hold.name} ({state}): {held.messages} messages")
    for note in view.notes:
        print_line(f"note by {note.created_by}: {note.value}")
    for job in view.exports:
        print_line(f"export {job.id} {job.state} {job.done}/{job.total} to {job.dest}"
                   + (f" summary {job.summary_sha256}" if job.summary_sha256 else ""))
    console.print("[bold]Chain of custody[/bold]")
    for entry in view.custody:
        print_line(f"  {entry.seq} {entry.at.isoformat()} {entry.actor} {entry.action}")


@case_group.command("close")
def close(name: CaseName, note: Annotated[str, typer.Option(help="Why.")] = "",
          vault: VaultOption = None) -> None:
    """Close a case (its holds stay in force until released one by one)."""
    with open_vault(vault) as opened:
        case = cases.close_case(opened, principal(), name, note)
    print_line(f"case {case.name!r} closed; its holds stay until released")


@case_group.command("custodian")
def custodian(name: CaseName,
              address: Annotated[str, typer.Argument(help="The custodian's address.")],
              vault: VaultOption = None) -> None:
    """Add a custodian (an address) to a case."""
    with open_vault(vault) as opened:
        cases.add_custodian(opened, principal(), name, address)
    print_line(f"custodian {address} added to {name!r}")


@case_group.command("query", context_settings=QUERY_COMMAND)
def query(name: CaseName, label: Annotated[str, typer.Argument(help="A label for it.")],
          text: Annotated[str, typer.Argument(help="The query.")],
          vault: VaultOption = None) -> None:
    """Save a query in a case."""
    with open_vault(vault) as opened:
        cases.add_query(opened, principal(), name, label, text)
    print_line(f"query {label!r} saved in {name!r}")


@case_group.command("note")
def note(name: CaseName, text: Annotated[str, typer.Argument(help="The note.")],
         vault: VaultOption = None) -> None:
    """Add a note to a case."""
    with open_vault(vault) as opened:
        cases.add_note(opened, principal(), name, text)
    print_line(f"note added to {name!r}")


@case_group.command("hold")
def hold(
    name: CaseName,
    hold_name: Annotated[str, typer.Argument(help="A name for the hold.")],
    reason: Annotated[str, typer.Option(help="Why (a matter, a subpoena).")],
    owner: Annotated[str, typer.Option(help="Who is responsible for it.")],
    custodian: Annotated[str | None, typer.Option(help="Hold this address's mail.")] = None,
    query: Annotated[str | None, typer.Option("--query", help="Hold a query's matches.")]
    = None,
    vault: VaultOption = None,
) -> None:
    """Place a legal hold from a case (released only by 'mailvault hold release')."""
    with open_vault(vault) as opened:
        placed = cases.place_hold(opened, principal(), name, hold_name, reason=reason,
                                  owner=owner, custodian=custodian, query=query)
    print_line(f"hold {placed.hold.name!r} placed from {name!r}: {placed.messages} messages")
