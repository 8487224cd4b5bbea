"""Commands that find and read mail: search, count, show, get."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

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
from mailvault.cli.terminal_text import CELL_WIDTH, ELLIPSIS, block, cell, line
from mailvault.errors import MailvaultError
from mailvault.usecases import finding


def register(app: typer.Typer) -> None:
    app.command("search", context_settings=QUERY_COMMAND)(search)
    app.command("count", context_settings=QUERY_COMMAND)(count)
    app.command("show")(show)
    app.command("get")(get)


def search(
    query: Annotated[str, typer.Argument(help="A query, e.g. 'from:alice after:2001-01-01'.")]
    = "",
    vault: VaultOption = None,
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 50,
    json_out: JsonOption = False,
) -> None:
    """Search the archive, newest first (an empty query lists everything)."""
    with open_vault(vault) as opened:
        result = finding.search(opened, principal(), query, limit=limit)
    if json_out:
        print_json([row.to_json() for row in result.rows])
        return
    table = Table(title=f"{result.total} messages match", title_justify="left")
    for column in ("id", "date", "from", "subject", "folder"):
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(str(row.id), row.date.strftime("%Y-%m-%d %H:%M") if row.date else "",
                      cell(row.from_addr), cell(row.subject), cell(row.folder))
    console.print(table)
    if any(len(text) > CELL_WIDTH for row in result.rows
           for text in (row.from_addr, row.subject, row.folder)):
        print_line(f"Text longer than {CELL_WIDTH} characters is cut ({ELLIPSIS}); "
                   "'mailvault show ID' and --json give it whole.")


def count(
    query: Annotated[str, typer.Argument(help="A query (empty: every message).")] = "",
    vault: VaultOption = None,
) -> None:
    """Print how many messages match a query: one number."""
    with open_vault(vault) as opened:
        typer.echo(str(finding.count(opened, principal(), query)))


def show(
    ref: Annotated[str, typer.Argument(help="Message id, or a SHA-256 prefix (8+ digits).")],
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show a message: headers, where it came from, text and attachments."""
    with open_vault(vault) as opened:
        message = finding.open_message(opened, principal(), ref)
    row, parsed, headers, arrivals = (message.row, message.parsed, message.headers,
                                      message.arrivals)
    if json_out:
        data = row.to_json()
        data.update(headers=headers, body=parsed.body, defects=message.defects,
                    provenance=[p.to_json() for p in arrivals],
                    attachment_list=[{"filename": a.filename, "content_type": a.content_type,
                                      "size": a.size} for a in parsed.attachments])
        print_json(data)
        return
    console.print(f"[bold]Message {row.id}[/bold]  sha256 {row.sha256}  {row.size} bytes  "
                  f"tier {row.tier}", highlight=False)
    # Text, not markup: a header of megabytes is printed in one pass, and "[x]" stays "[x]".
    for name, value in headers:
        console.print(Text.assemble((line(name) + ":", "cyan"), " ", line(value)),
                      highlight=False)
    console.print("\n[bold]Arrivals[/bold]")
    for prov in arrivals:
        text = prov.describe()
        if prov.envelope_to:
            text += f"  envelope from {prov.envelope_from} to {', '.join(prov.envelope_to)}"
        print_line("  " + text)
    if parsed.attachments:
        console.print("\n[bold]Attachments[/bold]")
        for att in parsed.attachments:
            print_line(f"  {att.filename or '(unnamed)'}  {att.content_type}  {att.size} bytes")
    if message.defects:
        console.print(Text.assemble("\n", ("Parse defects", "bold"), ": ",
                                    line(", ".join(message.defects))), highlight=False)
    console.print("\n" + block(parsed.body), highlight=False, markup=False)


def get(
    ref: Annotated[str, typer.Argument(help="Message id, or a SHA-256 prefix (8+ digits).")],
    vault: VaultOption = None,
    raw: Annotated[bool, typer.Option("--raw", help="The exact bytes received.")] = True,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write to this file, not stdout.")] = None,
) -> None:
    """Write a message's exact bytes (checked against its SHA-256) to a file or stdout."""
    with open_vault(vault) as opened:
        _row, data = finding.raw_message(opened, principal(), ref,
                                         to=str(output) if output else "stdout")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise MailvaultError(f"{output} cannot be written: {exc.strerror}.") from exc
