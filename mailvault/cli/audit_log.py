"""``mailvault audit``: read the audit log, check its chain, print its head."""

from __future__ import annotations

from typing import Annotated

import typer

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    actor,
    console,
    open_vault,
    print_json,
    print_line,
)
from mailvault.compliance import audit
from mailvault.search.query import parse_day

group = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="audit")


@group.command("log")
def log(
    vault: VaultOption = None,
    since: Annotated[str | None, typer.Option(help="Entries from this day on (YYYY-MM-DD).")]
    = None,
    json_out: JsonOption = False,
) -> None:
    """Print audit entries, oldest first (the reading is itself recorded)."""
    with open_vault(vault) as opened, opened.engine.begin() as conn:
        rows = list(audit.entries(conn, parse_day(since) if since else None))
        # The log shows what others searched for and opened: reading it is a human action.
        audit.record(conn, actor(), "audit read", {"since": since, "entries": len(rows)})
    if json_out:
        print_json([e.to_json() for e in rows])
        return
    for e in rows:
        print_line(f"{e.seq:>6} {e.at:%Y-%m-%d %H:%M:%S} {e.actor:<16} {e.action:<10} "
                   f"{e.detail}")


@group.command("verify")
def verify(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Check that no audit entry was edited, inserted or removed."""
    with open_vault(vault) as opened, opened.engine.connect() as conn:
        problems = audit.verify(conn)
        seq, digest = audit.head(conn)
    if json_out:
        print_json({"ok": not problems, "entries": seq, "head": digest, "problems": problems})
    elif problems:
        for problem in problems:
            print_line(problem)
    else:
        console.print(f"the audit chain is intact: {seq} entries, head {digest}")
    if problems:
        raise typer.Exit(1)


@group.command("head")
def head(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """The newest entry's hash: keep it outside the archive to detect a rollback."""
    with open_vault(vault) as opened, opened.engine.connect() as conn:
        seq, digest = audit.head(conn)
    if json_out:
        print_json({"seq": seq, "hash": digest})
    else:
        typer.echo(f"{seq} {digest}")
