"""``mailvault dispose``: delete what is past retention and not on hold, leaving tombstones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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
from mailvault.errors import InputError
from mailvault.usecases import disposition

if TYPE_CHECKING:
    from mailvault.usecases.disposition import Plan, Run


def register(app: typer.Typer) -> None:
    app.command("dispose")(dispose)


def dispose(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be disposed of; "
                                          "change nothing.")] = False,
    propose: Annotated[bool, typer.Option("--propose", help="Propose a run for another admin "
                                          "to approve (four-eyes).")] = False,
    approve: Annotated[int | None, typer.Option(help="Approve and execute this proposed "
                                                "run.")] = None,
    cancel: Annotated[int | None, typer.Option(help="Withdraw this proposed run.")] = None,
    runs: Annotated[bool, typer.Option("--runs", help="List recent runs.")] = False,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Dispose of messages past retention and not held (tombstones and a report remain)."""
    if sum((dry_run, propose, approve is not None, cancel is not None, runs)) > 1:
        raise InputError("give one of --dry-run, --propose, --approve, --cancel, --runs.")
    with open_vault(vault) as opened:
        who = principal()
        if dry_run:
            _show_plan(disposition.dry_run(opened, who), json_out)
            return
        if runs:
            listed = disposition.runs(opened, who)
            if json_out:
                print_json([r.to_json() for r in listed])
            elif not listed:
                console.print("no disposition runs yet")
            for r in [] if json_out else listed:
                print_line(f"run {r.id}: {r.state}, {r.disposed}/{r.candidates} disposed, "
                           f"proposed by {r.proposed_by}, approved by {r.approved_by or '-'}")
            return
        if propose:
            run = disposition.propose(opened, who)
        elif approve is not None:
            run = disposition.approve(opened, who, approve)
        elif cancel is not None:
            run = disposition.cancel(opened, who, cancel)
        else:
            run = disposition.dispose(opened, who)
    _show_run(run, json_out)


def _show_plan(plan: Plan, json_out: bool) -> None:
    if json_out:
        print_json(plan.to_json())
        return
    console.print(f"would dispose of {len(plan.candidates)} messages "
                  f"({sum(c.size for c in plan.candidates)} bytes); {len(plan.held)} past "
                  "retention are kept by legal holds", highlight=False)
    for c in plan.candidates[:50]:
        print_line(f"  {c.message_id} {c.sha256[:16]} policy {c.policy}")


def _show_run(run: Run, json_out: bool) -> None:
    if json_out:
        print_json(run.to_json())
        return
    if run.state == disposition.PROPOSED:
        console.print(f"run {run.id} proposed: {run.candidates} messages; another admin "
                      f"approves it with 'mailvault dispose --approve {run.id}'",
                      highlight=False)
    elif run.state == disposition.EXECUTED:
        print_line(f"run {run.id}: disposed of {run.disposed} messages; report {run.report}")
    else:
        console.print(f"run {run.id} {run.state}", highlight=False)
