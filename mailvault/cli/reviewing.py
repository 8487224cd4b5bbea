"""``mailvault review``: supervisory review policies, runs and reports. Queues are worked
in the web application by reviewers (the command line acts as administrator and auditor)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mailvault.cli.app import JsonOption, VaultOption, console, open_vault, principal, print_json
from mailvault.cli.terminal_text import cell, line
from mailvault.usecases import reviewing
from mailvault.usecases.reviewing import PolicyDraft

if TYPE_CHECKING:
    from mailvault.review.policies import ReviewPolicy

review_group = typer.Typer(help="Supervisory review: policies, runs, reports.",
                           no_args_is_help=True)
policy_group = typer.Typer(help="Review policies: who is supervised, lexicon, sample.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    review_group.add_typer(policy_group, name="policy")
    app.add_typer(review_group, name="review")


@policy_group.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the policy.")],
    supervise: Annotated[list[str] | None, typer.Option(
        "--supervise", help="A supervised address (repeat for more).")] = None,
    supervise_user: Annotated[list[str] | None, typer.Option(
        "--supervise-user", help="A supervised user: all their addresses (repeat).")] = None,
    direction: Annotated[list[str] | None, typer.Option(
        "--direction", help="inbound, outbound or internal (repeat; default: all three).")]
    = None,
    lexicon: Annotated[list[str] | None, typer.Option(
        "--lexicon", help="A lexicon term in the query language, e.g. 'guarantee*' or "
        "'body:\"off the books\"' (repeat).")] = None,
    sample: Annotated[float, typer.Option(
        help="Percent of each supervised person's mail per period drawn at random.")] = 0.0,
    period: Annotated[str, typer.Option(help="daily or weekly.")] = "weekly",
    seed: Annotated[int | None, typer.Option(
        help="The sample's seed (default: a random one, recorded).")] = None,
    exclude_sender: Annotated[list[str] | None, typer.Option(
        "--exclude-sender", help="Leave out mail from this address or @domain (repeat).")]
    = None,
    keep_automated: Annotated[bool, typer.Option(
        "--keep-automated", help="Keep list, bulk and auto-submitted mail in scope.")]
    = False,
    reviewer: Annotated[list[str] | None, typer.Option(
        "--reviewer", help="A reviewer who works the queue (repeat).")] = None,
    escalate_to: Annotated[list[str] | None, typer.Option(
        "--escalate-to", help="A second reviewer escalations go to (repeat).")] = None,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a review policy."""
    draft = PolicyDraft(
        name=name, supervised=tuple(supervise or ()),
        supervised_users=tuple(supervise_user or ()),
        directions=tuple(direction or ("inbound", "outbound", "internal")),
        lexicon=tuple(lexicon or ()), sample_percent=sample, period=period, seed=seed,
        exclude_senders=tuple(exclude_sender or ()), exclude_automated=not keep_automated,
        reviewers=tuple(reviewer or ()), escalation_reviewers=tuple(escalate_to or ()))
    with open_vault(vault) as opened:
        policy = reviewing.add_policy(opened, principal(), draft)
    _show(policy, json_out)


@policy_group.command("list")
def list_policies(
    vault: VaultOption = None,
    removed: Annotated[bool, typer.Option("--removed", help="Include removed policies.")]
    = False,
    json_out: JsonOption = False,
) -> None:
    """Every review policy."""
    with open_vault(vault) as opened:
        found = reviewing.list_policies(opened, principal(), removed)
    if json_out:
        print_json([p.to_json() for p in found])
        return
    table = Table()
    for column in ("id", "name", "supervised", "lexicon", "sample", "reviewers", "state"):
        table.add_column(column, overflow="fold")
    for p in found:
        table.add_row(str(p.id), cell(p.name),
                      cell(", ".join((*p.supervised, *p.supervised_users))),
                      str(len(p.lexicon)), f"{p.sample_percent:g}% {p.period}",
                      cell(", ".join(p.reviewers)), "active" if p.active else "removed")
    console.print(table)


@policy_group.command("show")
def show(
    policy: Annotated[str, typer.Argument(help="The policy's name or id.")],
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """One review policy, whole."""
    with open_vault(vault) as opened:
        found = reviewing.show_policy(opened, principal(), policy)
    _show(found, json_out)


@policy_group.command("remove")
def remove(
    policy: Annotated[str, typer.Argument(help="The policy's name or id.")],
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Stop a policy's runs (its queue, decisions and reports stay)."""
    with open_vault(vault) as opened:
        found = reviewing.remove_policy(opened, principal(), policy)
    _show(found, json_out)


@review_group.command("run")
def run(
    policy: Annotated[str | None, typer.Argument(help="One policy (default: every active one).")]
    = None,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Fill the queues: lexicon hits, and the sample of every period that has ended."""
    with open_vault(vault) as opened:
        reports = reviewing.run(opened, principal(), policy)
    if json_out:
        print_json([r.to_json() for r in reports])
        return
    for r in reports:
        typer.echo(line(f"{r.policy}: {r.in_scope} in scope ({r.excluded} excluded), "
                        f"{r.lexicon_hits} lexicon hits, {r.sampled} sampled in "
                        f"{r.drawn_periods} periods, {r.added} new items"))


@review_group.command("report")
def report(
    policy: Annotated[str | None, typer.Argument(help="One policy (default: all).")] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print the per-period table as CSV.")]
    = False,
    reviewers_csv: Annotated[bool, typer.Option(
        "--reviewers-csv", help="Print the per-reviewer table as CSV.")] = False,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Per policy and period: in scope, sampled, hits per term, reviewed, pending,
    escalated, violations; per reviewer: throughput."""
    with open_vault(vault) as opened:
        result = reviewing.report(opened, principal(), policy)
    if json_out:
        print_json(result.to_json())
        return
    if csv_out or reviewers_csv:
        text = reviewing.periods_csv(result) if csv_out else reviewing.reviewers_csv(result)
        typer.echo(text, nl=False)
        return
    table = Table()
    for column in ("policy", "period", "in scope", "sampled", "hits", "reviewed", "pending",
                   "escalated", "violations"):
        table.add_column(column)
    for p in result.periods:
        table.add_row(cell(p.policy), p.period, str(p.in_scope), str(p.sampled),
                      str(p.lexicon_hits), str(p.reviewed), str(p.pending), str(p.escalated),
                      str(p.violations))
    console.print(table)


def _show(policy: ReviewPolicy, json_out: bool) -> None:
    if json_out:
        print_json(policy.to_json())
        return
    for key, value in policy.to_json().items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        typer.echo(line(f"{key}: {shown}"))
