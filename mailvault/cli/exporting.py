"""``mailvault export``, ``export-jobs``, ``export-key``; ``verify --export`` is in health.py."""

from __future__ import annotations

from pathlib import Path
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
from mailvault.cli.progress import Meter
from mailvault.cli.terminal_text import cell
from mailvault.usecases import exporting


def register(app: typer.Typer) -> None:
    app.command("export", context_settings=QUERY_COMMAND)(export)
    app.command("export-jobs")(export_jobs)
    app.command("export-key")(export_key)


def export(
    query: Annotated[str, typer.Argument(help="A query (empty: every message).")] = "",
    *,
    to: Annotated[Path, typer.Option("--to", help="A new (or empty) folder to export to; "
                                     "the same command again resumes an interrupted export.")],
    case: Annotated[str | None, typer.Option(help="The case the export belongs to.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="eml (one file a message) or mbox "
                                     "(one mboxrd file a folder).")] = "eml",
    by: Annotated[str, typer.Option("--by", help="Folders by archive 'folder' or by "
                                    "'custodian' (the case's).")] = "folder",
    zip_it: Annotated[bool, typer.Option("--zip", help="Also pack it as FOLDER.zip.")] = False,
    person: Annotated[str | None, typer.Option(
        "--person", help="A subject-access export: every message this address is party to "
        "(what 'person report' lists; a query narrows it).")] = None,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export the matches of a query with manifests, a Concordance load file and a signed
    summary (resumable: run the same command again after an interruption)."""
    who = principal()
    if person is not None:
        query = exporting.person_query(person, query)
    with open_vault(vault) as opened:
        job = exporting.start_export(opened, who, query, to, case=case, fmt=fmt, layout=by,
                                     zip_it=zip_it)
        with Meter(f"export {job.id}") as meter:
            finished = exporting.run_export(opened, who, job.id,
                                            lambda done, _total: meter.update(done, 0))
    if json_out:
        print_json(finished.to_json())
        return
    counts = finished.counts
    print_line(f"exported {counts['exported']} of {counts['messages']} messages "
               f"({counts['documents']} documents, {counts['errors']} errors) to {job.dest}")
    print_line(f"summary sha256 {finished.summary_sha256}, signed by key "
               f"{finished.fingerprint}")
    if finished.zip_path:
        print_line(f"zip: {finished.zip_path}")


def export_jobs(case: Annotated[str | None, typer.Option(help="Only this case's.")] = None,
                vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Export jobs, newest first, with their state and progress."""
    with open_vault(vault) as opened:
        found = exporting.list_exports(opened, principal(), case)
    if json_out:
        print_json([j.to_json() for j in found])
        return
    table = Table()
    for column in ("id", "state", "done", "format", "query", "to"):
        table.add_column(column, overflow="fold")
    for j in found:
        table.add_row(str(j.id), j.state, f"{j.done}/{j.total}", j.format, cell(j.query),
                      cell(j.dest))
    console.print(table)


def export_key(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Print the public key exports are signed with (give it to whoever receives them)."""
    with open_vault(vault) as opened:
        key = exporting.export_key(opened, principal())
    if json_out:
        print_json(key.to_json())
        return
    typer.echo(key.pem, nl=False)
    typer.echo(f"fingerprint {key.fingerprint}", err=True)
