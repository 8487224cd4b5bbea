"""``mailvault audit``: read the audit log, check its chain, print its head."""

from __future__ import annotations

from typing import Annotated, Any

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
from mailvault.compliance.integrity import archive_problems
from mailvault.search.query import parse_day
from mailvault.store import audit
from mailvault.store.audit_head import parse_head

# Lists longer than this (an ingest entry's 500 hashes) are shown as a count in the text
# output; --json prints them whole.
_LISTED = 3

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
                   f"{_brief(e.detail)}")


def _brief(detail: dict[str, Any]) -> dict[str, Any]:
    return {key: f"[{len(value)} items]" if isinstance(value, list) and len(value) > _LISTED
            else value for key, value in detail.items()}


@group.command("verify")
def verify(
    vault: VaultOption = None,
    head: Annotated[str | None, typer.Option(
        "--head", help="A head kept outside the archive (SEQ:HASH, from 'mailvault audit "
        "head'): the log must still hold that entry with that hash.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Check that no audit entry was edited, inserted or removed (none cut off the end either),
    and that every message the log says was archived is still there or was disposed of."""
    given = parse_head(head) if head is not None else None
    with open_vault(vault) as opened, opened.engine.connect() as conn:
        problems = audit.verify(conn, given) + archive_problems(conn)
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
    """The newest entry's number and hash: keep them outside the archive, and check them later
    with 'audit verify --head SEQ:HASH' (catches a log cut back or rewritten with the keys)."""
    with open_vault(vault) as opened, opened.engine.connect() as conn:
        seq, digest = audit.head(conn)
    if json_out:
        print_json({"seq": seq, "hash": digest})
    else:
        typer.echo(f"{seq} {digest}")
