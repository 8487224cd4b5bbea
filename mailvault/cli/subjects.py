"""``mailvault person report|erase``: subject access and erasure requests (GDPR)."""

from __future__ import annotations

from typing import Annotated

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
from mailvault.usecases import subjects

person_app = typer.Typer(help="What the archive holds about a person; erasure requests.",
                         no_args_is_help=True)
Address = Annotated[str, typer.Argument(help="The person's mail address.")]


def register(app: typer.Typer) -> None:
    app.add_typer(person_app, name="person")
    person_app.command("report")(report)
    person_app.command("erase")(erase)


def report(address: Address, vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Every message the address is party to (envelope included), by tier, with its
    retention policy, retain-until date and holds."""
    with open_vault(vault) as opened:
        who = principal()
        found = subjects.person_report(opened, who, address)
    show_holds = subjects.shows_holds(who)
    if json_out:
        print_json(found.to_json(show_holds))
        return
    tiers = ", ".join(f"{tier} {count}" for tier, count in found.by_tier.items()) or "none"
    print_line(f"{found.address}: {len(found.messages)} messages ({tiers}); "
               f"{len(found.erasable)} without a retention obligation or hold")
    for m in found.messages:
        until = m.retain_until.date().isoformat() if m.retain_until else "-"
        date = m.row.date.date().isoformat() if m.row.date else "-"
        held = f" holds {','.join(m.holds)}" if show_holds and m.holds else ""
        print_line(f"  {m.row.id} {date} {m.row.tier} policy {m.policy} until {until}{held} "
                   f"{m.row.subject[:60]}")
    for request in found.requests:
        print_line(f"erasure requested {request['at']} by {request['by']}: "
                   f"{request['reason']} ({request['erasable']} erasable, "
                   f"{request['kept']} kept)")


def erase(
    address: Address,
    reason: Annotated[str, typer.Option("--reason", help="Why (the request's reference); "
                                        "kept in the audit log.")],
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record an erasure request and dispose of the address's messages that have no
    retention obligation and no legal hold; the rest stays, with the reason."""
    with open_vault(vault) as opened:
        outcome = subjects.erase(opened, principal(), address, reason)
    if json_out:
        print_json(outcome.to_json())
        return
    run = outcome.run
    if run is None:
        console.print("nothing to dispose of: every message has a retention obligation or "
                      "a hold", highlight=False)
    elif run.state == "proposed":
        print_line(f"disposition run {run.id} proposed ({run.candidates} messages): another "
                   f"administrator approves it with 'mailvault dispose --approve {run.id}'")
    else:
        print_line(f"disposed of {outcome.disposed} messages (run {run.id}, report "
                   f"{run.report})")
    print_line(f"{len(outcome.kept)} messages stay:")
    for m in outcome.kept:
        print_line(f"  {m.row.id} {m.row.sha256[:16]} {m.kept_because(outcome.show_holds)}")
