"""Commands that report on the vault: stats, verify, status; and the recorded failures
(``failure list``, ``failure retry``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    print_line,
)
from mailvault.cli.progress import Meter
from mailvault.cli.sources import source_line
from mailvault.cli.terminal_text import cell
from mailvault.errors import MailvaultError
from mailvault.usecases import exporting, monitoring

if TYPE_CHECKING:
    from mailvault.usecases.monitoring import IndexProgress

failure_app = typer.Typer(help="What could not be archived or indexed, and retrying it.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
    app.command("verify")(verify)
    app.command("status")(status)
    app.add_typer(failure_app, name="failure")
    failure_app.command("list")(list_failures)
    failure_app.command("retry")(retry)


def stats(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Messages, raw and stored bytes, index bytes, per tier, and what dedup saved."""
    with open_vault(vault) as opened:
        result = monitoring.stats(opened, principal())
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


def verify(
    vault: VaultOption = None,
    json_out: JsonOption = False,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Check an export folder (or its zip) instead of the vault: its "
        "signature and every file; needs no vault.")] = None,
    key: Annotated[Path | None, typer.Option(
        "--key", help="With --export: the public key (PEM) you were given; the export must "
        "be signed with it.")] = None,
) -> None:
    """Re-read every blob and check every hash; exit status 1 if anything is wrong."""
    if export is not None:
        _verify_export(export, key, json_out)
        return
    with open_vault(vault) as opened, Meter("verify") as meter:
        report = monitoring.verify(opened, principal(), lambda n: meter.update(n, 0))
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


def _verify_export(export: Path, key: Path | None, json_out: bool) -> None:
    try:
        key_pem = key.read_bytes() if key is not None else None
    except OSError as exc:
        raise MailvaultError(f"{key} cannot be read: {exc.strerror}.") from exc
    check = exporting.verify_export(export, key_pem)
    if json_out:
        print_json(check.to_json())
    else:
        print_line(f"{check.path}: signature {check.signature} (key {check.key_fingerprint}), "
                   f"{check.files_checked} files checked: "
                   + ("intact" if check.ok else "NOT intact"))
        for label, names in (("missing", check.missing), ("extra", check.extra),
                             ("altered", check.altered)):
            for name in names:
                print_line(f"  {label}: {name}")
        for problem in check.problems:
            print_line("  " + problem)
    if not check.ok:
        raise typer.Exit(1)


def status(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """What the vault is doing: message count, how much is searchable, recorded failures."""
    with open_vault(vault) as opened:
        found = monitoring.status(opened, principal())
    if json_out:
        print_json(found.to_json())
        return
    if found.catalog_problem:
        print_line(found.catalog_problem)
    print_line(_index_line(found.index, found.index_problem))
    if found.index.upgrade:
        print_line(f"index: {found.index.upgrade}")
    for line in describe_status(found.endpoint):
        print_line(line)
    for source in found.sources:
        print_line(source_line(source))
        for warning in source["warnings"]:
            print_line(f"  warning: {warning}")
    if found.failure_count:
        console.print(f"{found.failure_count} failures recorded (newest first):")
        for f in found.failures[:20]:
            print_line(f"  {f.kind} {f.source} {f.item or ''}: {f.reason}")


def _index_line(index: IndexProgress, problem: str) -> str:
    line = f"{index.messages} messages; indexed {index.indexed} of {index.messages}"
    if index.queued:
        line += f", {index.queued} queued for reindex"
    if index.behind:
        line += f" ({index.behind} not searchable yet" + (f": {problem})" if problem else ")")
    elif problem:
        line += f" (index: {problem})"
    return line


def describe_status(data: dict[str, Any] | None) -> list[str]:
    """Lines for `mailvault status` about the capture endpoint (from its status file)."""
    if data is None:
        return ["capture: never served (start it with 'mailvault serve')"]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(data["started_at"])))
    state = "running" if data["running"] else "not running"
    lines = [f"capture: {state} (pid {data['pid']}, since {since}): "
             + (", ".join(data["endpoints"]) or "no endpoint")]
    if data.get("stale"):
        at = time.strftime("%H:%M:%S", time.localtime(float(data["updated_at"])))
        lines.append(f"  (its status file cannot be rewritten on the full disk: figures as "
                     f"of {at})")
    accepted = data.get("accepted") or {}
    lines.append("  accepted: " + (", ".join(f"{n} {k}" for k, n in sorted(accepted.items()))
                                   or "none"))
    refused = data.get("refused") or {}
    lines.append("  refused: " + (", ".join(f"{n} {k}" for k, n in sorted(refused.items()))
                                  or "none"))
    internal = data.get("internal_errors") or 0
    if internal:
        lines.append(f"  internal errors: {internal} (faults of the archive, answered 421 or "
                     "tempfail; see the last error)")
    spool = data.get("spool") or {}
    oldest = spool.get("oldest_received")
    waiting = f", oldest waiting {time.time() - float(oldest):.1f} s" if oldest else ""
    lines.append(f"  spool: {spool.get('depth', 0)} waiting for the vault, "
                 f"{spool.get('bytes', 0)} bytes in {spool.get('segments', 0)} segments"
                 + waiting)
    if data.get("index_problem"):
        lines.append(f"  index: behind, healing is retried: {data['index_problem']}")
    error = data.get("last_error")
    if error:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(error["at"])))
        lines.append(f"  last error ({at}): {error['error']}")
    return lines


def list_failures(
    vault: VaultOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Include settled failures.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Every recorded failure, newest first, with the id 'failure retry' takes."""
    with open_vault(vault) as opened:
        found = monitoring.failures(opened, principal(), include_resolved=all_)
    if json_out:
        print_json([f.to_json() for f in found])
        return
    if not found:
        console.print("no failures recorded")
        return
    table = Table("id", "when", "kind", "source", "item", "reason", "state")
    for f in found:
        table.add_row(str(f.id), f"{f.recorded_at:%Y-%m-%d %H:%M}", f.kind, cell(f.source),
                      cell(f.item or ""), cell(f.reason),
                      "settled" if f.resolved else
                      "retryable" if f.retry_refusal is None else "not retryable")
    console.print(table)


def retry(
    failure_id: Annotated[int, typer.Argument(help="The failure's id (see 'failure list').")],
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Try a recorded failure again: index the message again, read the file again, or fetch
    the message from its source again; exit status 1 if it fails again."""
    with open_vault(vault) as opened:
        result = monitoring.retry_failure(opened, principal(), failure_id)
    if json_out:
        print_json(result.to_json())
    else:
        print_line(f"failure {failure_id} ({result.failure.kind}): {result.sentence}")
    if result.outcome == monitoring.FAILED_AGAIN:
        raise typer.Exit(1)
