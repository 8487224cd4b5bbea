"""Commands that put mail in: init, import, reindex."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    actor,
    console,
    errors,
    open_vault,
    print_json,
    print_line,
)
from mailvault.cli.progress import Meter
from mailvault.compliance import tiers
from mailvault.errors import InputError, StorageFullError
from mailvault.ingest.files import FORMATS, FileOptions, Reader
from mailvault.ingest.pipeline import ArchiveReport, Outcome, Pipeline
from mailvault.search import indexing
from mailvault.search.query import parse_day
from mailvault.store import catalog, file_modes
from mailvault.vault import Vault, default_vault_path


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("import")(import_)
    app.command("reindex")(reindex)


def init(
    vault: VaultOption = None,
    passphrase: Annotated[bool, typer.Option(
        "--passphrase", help="Protect the keyring with a passphrase (asked for, or "
        "$MAILVAULT_PASSPHRASE) instead of a key file.")] = False,
) -> None:
    """Create a vault: settings, keyring, catalog, index and volume folders."""
    import os

    secret = None
    if passphrase:
        secret = os.environ.get("MAILVAULT_PASSPHRASE") or typer.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True)
    path = vault or default_vault_path()
    with file_modes.owner_only_umask():
        created = Vault.create(path, secret)
        created.close()
    print_line(f"Created a vault in {created.path}")
    if not passphrase:
        print_line(f"Keep a copy of {created.path / 'keys'} somewhere safe: without it the "
                   "archive cannot be read.")


def import_(
    # readable=False: the Reader says which path cannot be read, in one sentence, exit 1.
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to import.",
                                                readable=False)],
    vault: VaultOption = None,
    format: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")]
    = "auto",
    since: Annotated[str | None, typer.Option(help="Only messages dated on or after (YYYY-MM-DD).")]
    = None,
    before: Annotated[str | None, typer.Option(help="Only messages dated before (YYYY-MM-DD).")]
    = None,
    folder: Annotated[str | None, typer.Option(help="Archive folder for every message "
                                               "(default: from the file or Maildir).")] = None,
    tier: Annotated[str, typer.Option("--tier", help="Tier to archive into: active, open or "
                                      "deep (open and deep: archived, then moved by a "
                                      "resumable tier job).")] = "active",
    json_out: JsonOption = False,
) -> None:
    """Archive EML files, folders of them, mbox files, Maildir trees, Outlook PST/OST files
    and MSG files."""
    options = FileOptions(format=format, folder=folder,
                          since=parse_day(since) if since else None,
                          before=parse_day(before) if before else None)
    target = tiers.check_tier(tier)
    reader = Reader(paths, options)
    archived: list[int] = []
    report = ArchiveReport()
    try:
        with open_vault(vault) as opened, Pipeline(opened, actor=actor()) as pipeline, \
                Meter("import", reader.scan.bytes_total) as meter:

            def progress(outcomes: list[Outcome]) -> None:
                for outcome in outcomes:
                    report.add(outcome)
                    if outcome.status == "archived" and outcome.message_id is not None:
                        archived.append(outcome.message_id)
                meter.update(report.processed, reader.scan.bytes_read)

            with opened.engine.connect() as conn:
                last_failure = catalog.last_failure_id(conn)
            pipeline.archive_many(reader, on_batch=progress)
            with opened.engine.begin() as conn:
                settled = catalog.settle_failures(conn, reader.scan.read_whole, last_failure)
            if target != "active" and archived:
                job = tiers.create_job(opened, archived, target, f"import --tier {target}",
                                       actor())
                tiers.run_job(opened, job.id)
            elapsed = meter.elapsed
            index = indexing.index_progress(opened)
    except StorageFullError as exc:
        # Every batch before this one is committed (and comes back as "already there" when
        # the import is run again); the batch that met the full disk left nothing behind.
        raise StorageFullError(
            f"the disk is full: {report.archived} messages were committed before it filled; "
            "run the import again when there is space (what is committed is not imported "
            "twice).") from exc
    summary = report.to_json()
    summary["seconds"] = round(elapsed, 2)
    summary["outside_date_range"] = reader.scan.outside_range
    summary["skipped"] = [{"item": i, "reason": r} for i, r in reader.scan.skipped]
    summary["failures_settled"] = settled
    outlook = reader.scan.outlook
    if outlook.lines():
        summary["outlook_items"] = outlook.to_json()
    if json_out:
        print_json(summary)
    else:
        _print_summary(report, reader.scan.outside_range, reader.scan.skipped, elapsed)
        for line in outlook.lines():
            print_line(line)
        if settled:
            console.print(f"earlier failures settled (their folder or file was read whole this "
                          f"time): {settled}", highlight=False)
    if index.behind:
        errors.print(f"the index could not be written ({index.problem}): {index.behind} "
                     "archived messages are not searchable yet; they are indexed when the "
                     "vault is next opened with the index writable.", highlight=False,
                     markup=False)
    if report.refused:
        raise typer.Exit(1)
    if report.processed == 0 and not reader.scan.outside_range:
        raise InputError("no messages were found in what was given.")


def _print_summary(report: ArchiveReport, outside: int, skipped: list[tuple[str, str]],
                   elapsed: float) -> None:
    rate = report.processed / elapsed if elapsed > 0 else 0.0
    console.print(f"archived {report.archived}, already there {report.duplicates}, "
                  f"with parse defects {report.with_defects}, refused {report.refused} "
                  f"({report.bytes / 1048576:.1f} MB in {elapsed:.1f} s, {rate:.0f} msg/s)",
                  highlight=False)
    if outside:
        console.print(f"{outside} messages were outside the date range and left out.")
    for item, reason in skipped:
        print_line(f"skipped {item}: {reason}")
    for item, reason in report.refusals:
        print_line(f"refused {item}: {reason}")
    for item, reason in report.not_indexed:
        print_line(f"archived but not searchable (recorded as a failure; 'mailvault "
                   f"reindex' tries again) {item}: {reason}")


def reindex(vault: VaultOption = None) -> None:
    """Rebuild the search index from the store and catalog."""
    with open_vault(vault) as opened, Meter("reindex") as meter:
        count = indexing.rebuild(opened, actor(), lambda n: meter.update(n, 0))
    console.print(f"reindexed {count} messages")
