"""``mailvault retention`` (policies and retain-until dates) and ``mailvault hold`` (legal
holds)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    actor,
    console,
    open_vault,
    print_json,
    print_line,
)
from mailvault.cli.terminal_text import cell
from mailvault.compliance import holds, retention
from mailvault.search.query import parse_day
from mailvault.store import catalog
from mailvault.store.catalog import from_epoch

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
        rules = retention.policies(opened)
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
        policy = retention.add_policy(opened, name, match, value, period, counted_from,
                                      actor())
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
        policy = retention.set_default(opened, period, counted_from, actor())
    _show_policy(policy, json_out)


@retention_group.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The policy's name.")],
           vault: VaultOption = None) -> None:
    """Remove a policy and recompute."""
    with open_vault(vault) as opened:
        retention.remove_policy(opened, name, actor())
    print_line(f"removed policy {name}")


@retention_group.command("recompute")
def recompute(vault: VaultOption = None) -> None:
    """Recompute every message's retain-until date from the policies."""
    with open_vault(vault) as opened:
        changed = retention.recompute(opened)
    console.print(f"{changed} retain-until dates changed")


@retention_group.command("show")
def show(ref: Annotated[str, typer.Argument(help="Message id or SHA-256 prefix.")],
         vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """A message's retain-until date, the policy that decides it, and the holds on it."""
    with open_vault(vault) as opened:
        with opened.engine.connect() as conn:
            row = catalog.resolve(conn, ref)
        retention.recompute(opened, [row.id])
        with opened.engine.connect() as conn:
            until, policy = retention.retain_until(conn, [row.id])[row.id]
        on_hold = [h.name for h in holds.holds(opened) if row.id in holds.held_by(opened, h)]
    stamp = from_epoch(until)
    data = {"id": row.id, "sha256": row.sha256,
            "retain_until": stamp.isoformat() if stamp else None, "policy": policy,
            "holds": on_hold}
    if json_out:
        print_json(data)
    else:
        print_line(f"message {row.id}: kept until {stamp:%Y-%m-%d} (policy {policy})"
                   + (f"; held by {', '.join(on_hold)}" if on_hold else ""))


def _show_policy(policy: retention.Policy, json_out: bool) -> None:
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
    with open_vault(vault) as opened:
        hold = holds.place(opened, name, custodian=custodian, query=query,
                           date_from=parse_day(since) if since else None,
                           date_to=parse_day(before) if before else None,
                           reason=reason, owner=owner, actor=actor())
        count = len(holds.held_by(opened, hold))
    if json_out:
        print_json({**hold.to_json(), "messages": count})
    else:
        print_line(f"hold {hold.name} placed: {count} messages held now")


@hold_group.command("release")
def release(
    name: Annotated[str, typer.Argument(help="The hold's name.")],
    note: Annotated[str, typer.Option(help="Why it is released.")] = "",
    vault: VaultOption = None,
) -> None:
    """Release a hold (explicitly; holds never expire)."""
    with open_vault(vault) as opened:
        holds.release(opened, name, actor(), note)
    print_line(f"hold {name} released")


@hold_group.command("list")
def list_holds(
    all_: Annotated[bool, typer.Option("--all", help="Include released holds.")] = False,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Holds, with how many messages each covers now."""
    with open_vault(vault) as opened:
        listed = [(h, len(holds.held_by(opened, h)) if h.active else 0)
                  for h in holds.holds(opened, include_released=all_)]
    if json_out:
        print_json([{**h.to_json(), "messages": n} for h, n in listed])
        return
    table = Table()
    for column in ("name", "covers", "messages", "reason", "owner", "state"):
        table.add_column(column)
    for h, n in listed:
        table.add_row(cell(h.name), cell(h.custodian or h.query or ""), str(n), cell(h.reason),
                      cell(h.owner), cell("active" if h.active else f"released by {h.released_by}"))
    console.print(table)
