"""Commands that keep the vault safe over time: backup, backup verify, upgrade, migrate.

(``init --from-backup`` restores; it lives with ``init`` in archiving.py.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    console,
    errors,
    human_bytes,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.cli.progress import Meter
from mailvault.errors import InputError
from mailvault.usecases import backups, migrating

group = typer.Typer(help="Back the vault up (while serve runs), or check a backup.",
                    invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="backup")
    app.command("upgrade")(upgrade)
    app.command("migrate")(migrate)


@group.callback()
def backup(
    ctx: typer.Context,
    to: Annotated[Path | None, typer.Option(
        "--to", help="The backup folder: new, or one holding an earlier backup of this vault "
        "(then only what is new is copied).")] = None,
    include_keys: Annotated[bool, typer.Option(
        "--include-keys", help="Copy the keyring too (keys are better kept apart from the "
        "backups: see docs/backup.md).")] = False,
    include_index: Annotated[bool, typer.Option(
        "--include-index", help="Copy the search index too (otherwise a restore rebuilds "
        "it).")] = False,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Back the vault up into a folder: a consistent snapshot of the catalog (SQLite or
    PostgreSQL), the volumes it uses (local files or the bucket's objects), the settings;
    the keyring only with --include-keys. Run it again into the same folder: only what is
    new is copied, and a backup cut short goes on where it stopped."""
    if ctx.invoked_subcommand is not None:
        return
    if to is None:
        raise InputError("say where the backup goes: mailvault backup --to DIR.")
    with open_vault(vault) as opened, Meter("backup", unit="files", short="file") as meter:
        files = [0, 0]

        def copied(name: str, amount: int) -> None:
            # Catalog tables report rows; files (volumes, objects) their bytes.
            if not name.startswith(f"{backups.BACKUP_CATALOG}:"):
                files[0] += 1
                files[1] += amount
                meter.update(files[0], files[1])

        report = backups.back_up(opened, principal(), to, include_keys=include_keys,
                                 include_index=include_index, progress=copied)
    if json_out:
        print_json(report.to_json())
        return
    print_line(f"Backed up {report.messages} messages into {report.folder} (audit log to "
               f"entry {report.audit_seq}).")
    objects = f", {report.objects_copied} of them objects of {report.blobs}" \
        if report.blobs else ""
    console.print(f"copied {len(report.copied)} files ({human_bytes(report.bytes_copied)})"
                  f"{objects}; kept {len(report.kept)} sealed volumes from the earlier "
                  f"backup; removed {len(report.removed)}", highlight=False)
    if not include_keys:
        console.print("The keys are not in the backup: a restore needs the vault's keys "
                      "folder (--keys DIR).", highlight=False)


@group.command("verify")
def verify(
    folder: Annotated[Path, typer.Argument(help="The backup folder.")],
    json_out: JsonOption = False,
) -> None:
    """Check a backup on its own: every file's SHA-256, the catalog copy, the volumes it
    uses. Exit 1 when anything is wrong."""
    result = backups.check_backup(principal(), folder)
    if json_out:
        print_json(result.to_json())
    elif result.ok:
        print_line(f"{result.folder}: backup OK, {result.files} files "
                   f"({human_bytes(result.bytes)}), {result.messages} messages, audit log to "
                   f"entry {result.audit_seq}, taken {result.created_at}.")
    else:
        for problem in result.problems:
            print_line(f"{result.folder}: {problem}")
    if not result.ok:
        raise typer.Exit(1)


def upgrade(
    vault: VaultOption = None,
    backup_to: Annotated[Path | None, typer.Option(
        "--backup-to", help="Back the vault up into this folder first.")] = None,
    no_backup: Annotated[bool, typer.Option(
        "--no-backup", help="Upgrade without a backup first.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Migrate a vault written by an older release to this release's format (a backup is
    offered first)."""
    if backup_to is None and not no_backup:
        before = backups.format_of(vault)
        if before < backups.FORMAT_VERSION:
            if not sys.stdin.isatty():
                raise InputError("take a backup first with --backup-to DIR, or say "
                                 "--no-backup.")
            answer = typer.prompt("Back the vault up first into which folder? (empty: no "
                                  "backup)", default="", show_default=False)
            backup_to = Path(answer) if answer.strip() else None
    upgraded = backups.upgrade(principal(), vault, backup_to)
    if json_out:
        print_json(upgraded.to_json())
    elif upgraded.before == upgraded.after:
        print_line(f"The vault in {upgraded.vault} is of format {upgraded.after} already: "
                   "nothing to upgrade.")
    else:
        if upgraded.backup is not None:
            print_line(f"Backed up into {upgraded.backup.folder} first.")
        print_line(f"Upgraded the vault in {upgraded.vault} from format {upgraded.before} to "
                   f"{upgraded.after}.")


def migrate(
    into: Annotated[Path, typer.Option(
        "--into", help="The new vault folder (new, or the one an unfinished migrate of this "
        "vault used): it gets the same keys and the moved vault.")],
    to: Annotated[str, typer.Option(
        "--to", help="Move the catalog into this empty PostgreSQL database, "
        "postgresql://USER@HOST:PORT/DATABASE (no password in it).")] = "",
    catalog_password_file: Annotated[Path | None, typer.Option(
        "--catalog-password-file", help="With --to: a file whose first line is the "
        "database password (else PGPASSWORD or ~/.pgpass).")] = None,
    blobs: Annotated[str, typer.Option(
        "--blobs", help="Move the volumes into this S3 bucket with Object Lock: "
        "s3://BUCKET/PREFIX.")] = "",
    s3_endpoint: Annotated[str, typer.Option(
        "--s3-endpoint", help="With --blobs: the S3 endpoint URL (default: AWS).")] = "",
    s3_credentials: Annotated[Path | None, typer.Option(
        "--s3-credentials", help="With --blobs: an AWS-style credentials file, stored sealed "
        "in the new vault (default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")] = None,
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """Move an embedded vault into a new folder whose catalog is in PostgreSQL and/or whose
    blobs are in S3, then check every message; run it again to finish an interrupted move."""
    if catalog_password_file is not None and not to:
        raise InputError("--catalog-password-file goes with --to.")
    moved = migrating.migrate(principal(), vault, migrating.Destination(
        into, to, str(catalog_password_file or ""), blobs, s3_endpoint, s3_credentials))
    if json_out:
        print_json(moved.to_json())
    elif moved.ok:
        rate = moved.messages / moved.seconds if moved.seconds else 0.0
        print_line(f"Moved {moved.messages} messages from {moved.source} to {moved.target} "
                   f"and read every one back intact ({moved.seconds:.1f} s, "
                   f"{rate:.0f} messages/s).")
    for problem in moved.problems:
        print_line(problem, to=errors)
    if not moved.ok:
        raise typer.Exit(1)
