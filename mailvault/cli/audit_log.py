"""``mailvault audit``: read the audit log, check its chain, print its head."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    console,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.days import parse_day
from mailvault.usecases import auditing

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
    day = parse_day(since) if since else None
    with open_vault(vault) as opened:
        rows = auditing.read_log(opened, principal(), day)
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
    given = auditing.given_head(head) if head is not None else None
    with open_vault(vault) as opened:
        check = auditing.verify_chain(opened, principal(), given)
    if json_out:
        print_json(check.to_json())
    elif check.problems:
        for problem in check.problems:
            print_line(problem)
    else:
        console.print(f"the audit chain is intact: {check.head.seq} entries, head "
                      f"{check.head.hash}")
    if check.problems:
        raise typer.Exit(1)


@group.command("head")
def head(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """The newest entry's number and hash: keep them outside the archive, and check them later
    with 'audit verify --head SEQ:HASH' (catches a log cut back or rewritten with the keys)."""
    with open_vault(vault) as opened:
        newest = auditing.head(opened, principal())
    if json_out:
        print_json({"seq": newest.seq, "hash": newest.hash})
    else:
        typer.echo(f"{newest.seq} {newest.hash}")
