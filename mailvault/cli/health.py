"""Commands that report on the vault: stats, verify, status."""

from __future__ import annotations

import typer
from rich.table import Table

from mailvault.capture.status import describe_status, read_status
from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    actor,
    console,
    human_bytes,
    open_vault,
    print_json,
    print_line,
)
from mailvault.cli.progress import Meter
from mailvault.compliance import inventory
from mailvault.compliance.verify import verify as run_verify
from mailvault.search import indexing
from mailvault.sources import overview
from mailvault.store import catalog


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
    app.command("verify")(verify)
    app.command("status")(status)


def stats(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Messages, raw and stored bytes, index bytes, per tier, and what dedup saved."""
    with open_vault(vault) as opened:
        result = inventory.collect(opened)
    if json_out:
        print_json(result.to_json())
        return
    table = Table(title=f"{result.messages} messages, {human_bytes(result.raw_bytes)} raw",
                  title_justify="left")
    for column in ("tier", "messages", "raw", "stored", "stored/raw", "stored/msg", "index",
                   "index/raw", "index/msg"):
        table.add_column(column, justify="right")
    for name, tier in sorted(result.tiers.items()):
        ratios = tier.ratios()
        table.add_row(name, str(tier.messages), human_bytes(tier.raw_bytes),
                      human_bytes(tier.stored_bytes), f"{ratios['stored_of_raw'] or 0:.3f}",
                      human_bytes(ratios["stored_per_message"] or 0),
                      human_bytes(tier.index_bytes), f"{ratios['index_of_raw'] or 0:.3f}",
                      human_bytes(ratios["index_per_message"] or 0))
    console.print(table)
    console.print(f"dedup: {result.duplicate_arrivals} duplicate arrivals "
                  f"({human_bytes(result.duplicate_bytes_saved)} not stored again); "
                  f"{result.shared_parts} of {result.parts} attachment parts shared "
                  f"({human_bytes(result.part_bytes_saved)} saved)", highlight=False)
    if result.failures:
        console.print(f"{result.failures} recorded failures (see 'mailvault status')")


def verify(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Re-read every blob and check every hash; exit status 1 if anything is wrong."""
    with open_vault(vault) as opened, Meter("verify") as meter:
        report = run_verify(opened, actor(), lambda n: meter.update(n, 0))
    if json_out:
        print_json(report.to_json())
    else:
        console.print(f"checked {report.messages_checked} messages and "
                      f"{report.parts_checked} parts: "
                      + ("all intact" if report.ok else f"{len(report.problems)} problems"),
                      highlight=False)
        for problem in report.problems:
            print_line("  " + problem)
    if not report.ok:
        raise typer.Exit(1)


def status(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """What the vault is doing: message count, how much is searchable, recorded failures."""
    with open_vault(vault) as opened:
        index = indexing.index_progress(opened)
        with opened.engine.connect() as conn:
            failures = catalog.failures(conn)
        endpoint = read_status(opened.path)
        sources = overview.describe(opened)
    problem = index.problem
    if endpoint and endpoint["running"] and endpoint.get("index_problem"):
        problem = str(endpoint["index_problem"])  # the running archiver's own words
    data = {"messages": index.messages, "index": {**index.to_json(), "problem": problem or None},
            "endpoint": endpoint,
            "failures": [{"at": f["at"], "kind": f["kind"], "source": f["source"],
                          "item": f["item"], "reason": f["reason"]} for f in failures[:100]],
            "failure_count": len(failures), "sources": sources}
    if json_out:
        print_json(data)
        return
    print_line(_index_line(index, problem))
    for line in describe_status(endpoint):
        print_line(line)
    for source in sources:
        print_line(overview.one_line(source))
        for warning in source["warnings"]:
            print_line(f"  warning: {warning}")
    if failures:
        console.print(f"{len(failures)} failures recorded (newest first):")
        for f in failures[:20]:
            print_line(f"  {f['kind']} {f['source']} {f['item'] or ''}: {f['reason']}")


def _index_line(index: indexing.IndexProgress, problem: str) -> str:
    line = f"{index.messages} messages; indexed {index.indexed} of {index.messages}"
    if index.queued:
        line += f", {index.queued} queued for reindex"
    if index.behind:
        line += f" ({index.behind} not searchable yet" + (f": {problem})" if problem else ")")
    elif problem:
        line += f" (index: {problem})"
    return line
