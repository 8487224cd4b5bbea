"""``mailvault restore``: archived mail back into a mailbox over IMAP."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailvault.cli.app import (
    JsonOption,
    VaultOption,
    errors,
    open_vault,
    principal,
    print_json,
    print_line,
)
from mailvault.cli.progress import Meter
from mailvault.errors import SourceError
from mailvault.password_files import read_password_file
from mailvault.usecases import restoring

if TYPE_CHECKING:
    from mailvault.sources.restoring import RestoreReport


def register(app: typer.Typer) -> None:
    app.command("restore")(restore)


def restore(
    query: Annotated[str, typer.Argument(help="Which messages (the search language; '' = "
                                         "all).")],
    imap: Annotated[str, typer.Option("--imap", help="The IMAP server: HOST or HOST:PORT.")],
    user: Annotated[str, typer.Option("--user", help="The mailbox to restore into.")],
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="Read the mailbox password from this file (else it is "
        "asked for).", show_default=False)] = None,
    tls: Annotated[str, typer.Option("--tls", help="implicit (IMAPS, port 993) or starttls "
                                     "(port 143).")] = "implicit",
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="Trust this CA (PEM) too; certificates are always verified.",
        show_default=False)] = None,
    folder_mode: Annotated[str, typer.Option(
        "--folder-mode", help="keep (the archived folders), flat (all into INBOX) or "
        "'into NAME' (the archived folders under NAME).")] = "keep",
    vault: VaultOption = None,
    json_out: JsonOption = False,
) -> None:
    """APPEND the matching messages' exact bytes into a mailbox, with their original
    INTERNALDATE and flags; run again to resume (nothing is appended twice)."""
    target = restoring.target(imap, tls, user, str(ca_file.expanduser()) if ca_file else None)
    mode = restoring.folder_mode(folder_mode)
    if password_file is not None:
        secret = read_password_file(password_file)
    else:
        secret = typer.prompt(f"Password for {target.user}", hide_input=True)
    bar = _Bar()
    try:
        with open_vault(vault) as opened:
            report = restoring.restore_mail(opened, principal(), query, target, secret, mode,
                                            progress=bar)
    finally:
        bar.close()
    if json_out:
        print_json(report.to_json())
    else:
        _show(report)
    if report.stopped:
        raise SourceError(f"the restore stopped: {report.stopped} Run the same command again "
                          "to resume.")


class _Bar:
    """The restore's progress as the other long commands show theirs (a Rich bar on a
    terminal, plain lines otherwise), started once the restore knows its size."""

    def __init__(self) -> None:
        self.meter: Meter | None = None

    def start(self, copies: int, size: int) -> None:
        self.meter = Meter(f"restore ({copies} copies)", size).__enter__()

    def advance(self, copies: int, size: int) -> None:
        if self.meter is not None:
            self.meter.update(copies, size)

    def close(self) -> None:
        if self.meter is not None:
            self.meter.__exit__(None, None, None)


def _show(report: RestoreReport) -> None:
    totals = report.totals()
    if report.resumed is not None:
        print_line(f"restore {report.job} resumed (run {report.resumed['runs'] + 1}): the "
                   f"last run had handled {report.resumed['handled']} of "
                   f"{report.resumed['planned']} copies ({report.resumed['ended']})")
    for name, result in sorted(report.folders.items()):
        print_line(f"{name}: {result.appended} appended, {result.present} already there"
                   + (f", {result.failed} failed" if result.failed else ""))
    print_line(f"restored into {report.target}: {totals['appended']} appended, "
               f"{totals['present']} already there, {totals['failed']} failed")
    for failure in report.failures[:50]:
        which = f"message {failure['id']}" if failure["id"] is not None else "folder"
        print_line(f"  {which} to {failure['folder']}: {failure['reason']}", to=errors)
