"""``mailvault retention`` (policies and retain-until dates) and ``mailvault hold`` (legal
holds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    console,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.cli.terminal_text import cell
from mailvault.days import parse_day
from mailvault.usecases import holds, retention

if TYPE_CHECKING:
    from mailvault.usecases.retention import Policy

retention_group = typer.Typer(help="Retention policies and retain-until dates.",
                              no_args_is_help=True)
hold_group = typer.Typer(help="Legal holds: mail that must not be disposed of.",
                         no_args_is_help=True)

FromOption = Annotated[str, typer.Option("--from", help="Count the period from the message "
                                         "'date' or the 'archived' date.")]


def register(app: typer.Typer) -> None:
    app.add_typer(retention_group, name="retention")
    app.add_typer(hold_group, name="hold")


@retention_group.command("list")
def list_policies(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Every policy (the longest applicable period wins)."""
    with open_vault(vault) as opened:
        rules = retention.list_policies(opened, principal())
    if json_out:
        print_json([p.to_json() for p in rules])
        return
    table = Table()
    for column in ("name", "matches", "value", "days", "from", "by"):
        table.add_column(column)
    for p in rules:
        table.add_row(cell(p.name), p.match, cell(p.value), str(p.days), p.counted_from,
                      cell(p.created_by))
    console.print(table)


@retention_group.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the policy.")],
    match: Annotated[str, typer.Option(help="source, address, domain, folder, tier or query.")],
    value: Annotated[str, typer.Option(help="What to match (an address, a domain, a query...).")],
    period: Annotated[str, typer.Option(help="How long: 90d, 12w, 6m, 7y.")],
    counted_from: FromOption = "date",
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a policy and recompute every message's retain-until date."""
    with open_vault(vault) as opened:
        policy = retention.add_policy(opened, principal(), name, match=match, value=value,
                                      period=period, counted_from=counted_from)
    _show_policy(policy, json_out)


@retention_group.command("default")
def default(
    period: Annotated[str, typer.Option(help="How long: 90d, 12w, 6m, 7y.")],
    counted_from: FromOption = "date",
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change the default policy (it always applies) and recompute."""
    with open_vault(vault) as opened:
        policy = retention.set_default_policy(opened, principal(), period, counted_from)
    _show_policy(policy, json_out)


@retention_group.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The policy's name.")],
           vault: VaultOption = None) -> None:
    """Remove a policy and recompute."""
    with open_vault(vault) as opened:
        retention.remove_policy(opened, principal(), name)
    print_line(f"removed policy {name}")


@retention_group.command("recompute")
def recompute(vault: VaultOption = None) -> None:
    """Recompute every message's retain-until date from the policies."""
    with open_vault(vault) as opened:
        changed = retention.recompute(opened, principal())
    console.print(f"{changed} retain-until dates changed")


@retention_group.command("show")
def show(ref: Annotated[str, typer.Argument(help="Message id or SHA-256 prefix.")],
         vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """A message's retain-until date, the policy that decides it, and the holds on it."""
    with open_vault(vault) as opened:
        kept = retention.message_retention(opened, principal(), ref)
    if json_out:
        print_json(kept.to_json())
    else:
        print_line(f"message {kept.id}: kept until {kept.retain_until:%Y-%m-%d} (policy "
                   f"{kept.policy})" + (f"; held by {', '.join(kept.holds)}" if kept.holds
                                        else ""))


def _show_policy(policy: Policy, json_out: bool) -> None:
    if json_out:
        print_json(policy.to_json())
    else:
        print_line(f"policy {policy.name}: {policy.match} {policy.value} kept "
                   f"{policy.days} days from {policy.counted_from}")


@hold_group.command("place")
def place(
    name: Annotated[str, typer.Argument(help="A name for the hold (a matter, a case).")],
    reason: Annotated[str, typer.Option(help="Why the mail must be kept.")],
    owner: Annotated[str, typer.Option(help="Who is responsible for the hold.")],
    custodian: Annotated[str | None, typer.Option(help="Hold every message of this "
                                                  "address.")] = None,
    query: Annotated[str | None, typer.Option(help="Hold every message this search "
                                              "matches.")] = None,
    since: Annotated[str | None, typer.Option(help="Only messages dated on or after "
                                              "(YYYY-MM-DD).")] = None,
    before: Annotated[str | None, typer.Option(help="Only messages dated before "
                                               "(YYYY-MM-DD).")] = None,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Place a legal hold; it covers matching mail archived later too."""
    date_from = parse_day(since) if since else None
    date_to = parse_day(before) if before else None
    with open_vault(vault) as opened:
        placed = holds.place_hold(opened, principal(), name, reason=reason, owner=owner,
                                  custodian=custodian, query=query, since=date_from,
                                  before=date_to)
    if json_out:
        print_json(placed.to_json())
    else:
        print_line(f"hold {placed.hold.name} placed: {placed.messages} messages held now")


@hold_group.command("release")
def release(
    name: Annotated[str, typer.Argument(help="The hold's name.")],
    note: Annotated[str, typer.Option(help="Why it is released.")] = "",
    vault: VaultOption = None,
) -> None:
    """Release a hold (explicitly; holds never expire)."""
    with open_vault(vault) as opened:
        holds.release_hold(opened, principal(), name, note)
    print_line(f"hold {name} released")


@hold_group.command("list")
def list_holds(
    all_: Annotated[bool, typer.Option("--all", help="Include released holds.")] = False,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Holds, with how many messages each covers now."""
    with open_vault(vault) as opened:
        listed = holds.list_holds(opened, principal(), include_released=all_)
    if json_out:
        print_json([entry.to_json() for entry in listed])
        return
    table = Table()
    for column in ("name", "covers", "messages", "reason", "owner", "state"):
        table.add_column(column)
    for entry in listed:
        h = entry.hold
        table.add_row(cell(h.name), cell(h.custodian or h.query or ""), str(entry.messages),
                      cell(h.reason), cell(h.owner),
                      cell("active" if h.active else f"released by {h.released_by}"))
    console.print(table)
