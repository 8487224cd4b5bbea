"""``mailvault tier``: move mail between Active, Open and Deep, resume moves, compact volumes,
run the lifecycle rules once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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
)
from mailvault.cli.progress import Meter
from mailvault.cli.terminal_text import cell
from mailvault.usecases import lifecycle

if TYPE_CHECKING:
    from mailvault.usecases.lifecycle import Job
    from mailvault.vault import Vault

group = typer.Typer(help="Tiers: move, activate, resume moves, compact.", no_args_is_help=True)

QueryArgument = Annotated[str, typer.Argument(help="Search query ('' for every message).")]


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="tier")


@group.command("move")
def move(
    query: QueryArgument,
    to: Annotated[str, typer.Option("--to", help="Target tier: active, open or deep.")],
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Move the messages a query matches to another tier (a resumable job)."""
    with open_vault(vault) as opened:
        job = lifecycle.start_move(opened, principal(), query, to)
        _finish(opened, job, json_out)


@group.command("activate")
def activate(query: QueryArgument, vault: VaultOption = None, json_out: JsonOption = False
             ) -> None:
    """Bring the messages a query matches back to Active, with full-text indexing."""
    with open_vault(vault) as opened:
        job = lifecycle.start_move(opened, principal(), query, "active")
        _finish(opened, job, json_out)


@group.command("resume")
def resume(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Finish every tier move that was interrupted."""
    with open_vault(vault) as opened:
        pending = lifecycle.unfinished_moves(opened, principal())
        if not pending and not json_out:
            console.print("no unfinished tier moves")
        for job in pending:
            _finish(opened, job, json_out)


@group.command("jobs")
def jobs(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """The newest tier moves and how far each got."""
    with open_vault(vault) as opened:
        listed = lifecycle.recent_moves(opened, principal())
    if json_out:
        print_json([j.to_json() for j in listed])
        return
    table = Table()
    for column in ("job", "to", "state", "done", "query", "by", "started"):
        table.add_column(column)
    for j in listed:
        table.add_row(str(j.id), j.target, j.state, f"{j.done}/{j.total}", cell(j.query),
                      cell(j.actor),
                      f"{j.created_at:%Y-%m-%d %H:%M}" if j.created_at else "")
    console.print(table)


@group.command("compact")
def compact(
    vault: VaultOption = None,
    min_free: Annotated[float | None, typer.Option(
        help="Compact volumes with at least this share of released bytes (default: [tiers] "
        "compact_min_free).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Reclaim the space of moved and disposed blobs (a volume still open for appends is
    sealed first, unless another process is appending to it)."""
    with open_vault(vault) as opened:
        report = lifecycle.compact(opened, principal(), min_free)
    if json_out:
        print_json(report.to_json())
        return
    console.print(f"compacted {len(report.volumes)} volumes: "
                  f"{human_bytes(report.bytes_before)} -> {human_bytes(report.bytes_after)}, "
                  f"{report.records_copied} records copied, {report.chunks_repacked} chunks "
                  "repacked", highlight=False)


@group.command("lifecycle")
def run_lifecycle(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Apply the [tiers] lifecycle rules once (serve does this on a schedule)."""
    with open_vault(vault) as opened:
        report = lifecycle.run_lifecycle(opened, principal())
    if json_out:
        print_json(report.to_json())
        return
    console.print(f"resumed {len(report.resumed)} moves; moved "
                  + (", ".join(f"{n} to {t}" for t, n in report.moved.items()) or "nothing")
                  + f"; {report.retention_changed} retain-until dates changed; "
                  f"{len(report.compacted)} volumes compacted",
                  highlight=False)


def _finish(vault: Vault, job: Job, json_out: bool) -> None:
    with Meter(f"tier move {job.id} to {job.target}") as meter:
        done = lifecycle.finish_move(vault, principal(), job,
                                     lambda n, _total: meter.update(n, 0))
        elapsed = meter.elapsed
    if json_out:
        print_json({**done.to_json(), "seconds": round(elapsed, 2)})
        return
    rate = done.done / elapsed if elapsed > 0 else 0.0
    console.print(f"job {done.id}: moved {done.done} messages to {done.target} in "
                  f"{elapsed:.1f} s ({rate:.0f} msg/s)", highlight=False)
