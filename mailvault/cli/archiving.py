"""Commands that put mail in: init, import, reindex."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    console,
    errors,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.cli.progress import Meter
from mailvault.days import parse_day
from mailvault.errors import InputError
from mailvault.ingest.files import FORMATS
from mailvault.usecases import backups, importing, vaults
from mailvault.usecases.importing import ImportResult


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("import")(import_)
    app.command("reindex")(reindex)


def init(
    vault: VaultOption = None,
    passphrase: Annotated[bool, typer.Option(
        "--passphrase", help="Protect the keyring with a passphrase (asked for, or "
        "$MAILVAULT_PASSPHRASE) instead of a key file.")] = False,
    from_backup: Annotated[Path | None, typer.Option(
        "--from-backup", help="Restore this backup (made by 'mailvault backup') into the new "
        "vault.")] = None,
    keys: Annotated[Path | None, typer.Option(
        "--keys", help="With --from-backup: the vault's keys folder, when the backup holds "
        "no keys.")] = None,
    blobs: Annotated[str, typer.Option(
        "--blobs", help="Keep sealed volumes in an S3-compatible bucket with Object Lock: "
        "s3://BUCKET/PREFIX (default: local disk only; with --from-backup, the restored "
        "volumes are uploaded there).")] = "",
    s3_endpoint: Annotated[str, typer.Option(
        "--s3-endpoint", help="With --blobs: the S3 endpoint URL (default: AWS).")] = "",
    s3_credentials: Annotated[Path | None, typer.Option(
        "--s3-credentials", help="With --blobs: an AWS-style credentials file whose keys are "
        "stored sealed with the vault's keyring (default: AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY at each command).")] = None,
    catalog: Annotated[str, typer.Option(
        "--catalog", help="Keep the catalog in this empty PostgreSQL database, "
        "postgresql://USER@HOST:PORT/DATABASE (no password in it), instead of the vault "
        "folder (with --from-backup, the restored catalog goes there).")] = "",
    catalog_password_file: Annotated[Path | None, typer.Option(
        "--catalog-password-file", help="With --catalog: a file whose first line is the "
        "database password (else PGPASSWORD or ~/.pgpass).")] = None,
    search_backend: Annotated[str, typer.Option(
        "--search-backend", help="With --catalog: 'postgresql' keeps the search index in that "
        "database too (default: tantivy, a folder in the vault).")] = "",
) -> None:
    """Create a vault: settings, keyring, catalog, index and volume folders; or restore one
    from a backup (--from-backup DIR)."""
    if from_backup is not None:
        if passphrase or search_backend:
            raise InputError("--passphrase and --search-backend do not go with --from-backup "
                             "(the restored vault keeps the backup's keys and settings).")
        restored = backups.restore(
            principal(), from_backup, vault, keys, catalog_url=catalog,
            catalog_password_file=str(catalog_password_file or ""), blobs=blobs,
            s3_endpoint=s3_endpoint, s3_credentials=s3_credentials)
        where = (" (catalog in PostgreSQL)" if restored.catalog == "postgresql" else "") + \
            (f" ({restored.volumes_uploaded} volumes uploaded to {restored.blobs})"
             if restored.blobs else "")
        print_line(f"Restored {restored.messages} messages from {restored.backup} into "
                   f"{restored.vault}{where}; the audit log goes on from entry "
                   f"{restored.audit_seq}.")
        for name in restored.settings_changed:
            print_line(f"{name} named a place of the old vault: commented out in "
                       "mailvault.toml (the restored vault keeps its own).")
        return
    if keys is not None:
        raise InputError("--keys goes with --from-backup.")
    if catalog_password_file is not None and not catalog:
        raise InputError("--catalog-password-file goes with --catalog.")
    secret = None
    if passphrase:
        secret = os.environ.get("MAILVAULT_PASSPHRASE") or typer.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True)
    if search_backend and not catalog:
        raise InputError("--search-backend goes with --catalog.")
    created = vaults.create(vault, secret, blobs, s3_endpoint, s3_credentials, catalog,
                            str(catalog_password_file or ""), search_backend)
    print_line(f"Created a vault in {created}" + (f", its blobs in {blobs}" if blobs else ""))
    if not passphrase:
        print_line(f"Keep a copy of {created / 'keys'} somewhere safe: without it the "
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
    planned = importing.plan_import(paths, format=format, folder=folder,
                                    since=parse_day(since) if since else None,
                                    before=parse_day(before) if before else None, tier=tier)
    with open_vault(vault) as opened, Meter("import", planned.total_bytes) as meter:
        result = importing.import_files(opened, principal(), planned, meter.update)
    if json_out:
        print_json(result.to_json())
    else:
        _print_summary(result)
        for line in result.outlook.lines():
            print_line(line)
        if result.failures_settled:
            console.print(f"earlier failures settled (their folder or file was read whole this "
                          f"time): {result.failures_settled}", highlight=False)
    index = result.index
    if index.behind:
        errors.print(f"the index could not be written ({index.problem}): {index.behind} "
                     "archived messages are not searchable yet; they are indexed when the "
                     "vault is next opened with the index writable.", highlight=False,
                     markup=False)
    if result.report.refused:
        raise typer.Exit(1)
    if result.found_nothing:
        raise InputError("no messages were found in what was given.")


def _print_summary(result: ImportResult) -> None:
    report, elapsed = result.report, result.seconds
    rate = report.processed / elapsed if elapsed > 0 else 0.0
    console.print(f"archived {report.archived}, already there {report.duplicates}, "
                  f"with parse defects {report.with_defects}, refused {report.refused} "
                  f"({report.bytes / 1048576:.1f} MB in {elapsed:.1f} s, {rate:.0f} msg/s)",
                  highlight=False)
    if result.outside_date_range:
        console.print(f"{result.outside_date_range} messages were outside the date range and "
                      "left out.")
    for item, reason in result.skipped:
        print_line(f"skipped {item}: {reason}")
    for item, reason in report.refusals:
        print_line(f"refused {item}: {reason}")
    for item, reason in report.not_indexed:
        print_line(f"archived but not searchable (recorded as a failure; 'mailvault "
                   f"reindex' tries again) {item}: {reason}")


def reindex(vault: VaultOption = None) -> None:
    """Rebuild the search index from the store and catalog."""
    with open_vault(vault) as opened, Meter("reindex") as meter:
        count = importing.reindex(opened, principal(), lambda n: meter.update(n, 0))
    console.print(f"reindexed {count} messages")
