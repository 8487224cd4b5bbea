"""Commands for remote mailboxes: source add|list|show|test|remove, sync, reconcile."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

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
from mailvault.cli.terminal_text import cell, line
from mailvault.errors import InputError
from mailvault.password_files import read_key_file, read_password_file
from mailvault.usecases import sources

if TYPE_CHECKING:
    from mailvault.sources.definitions import SourceSpec
    from mailvault.sources.report import SyncReport

source_app = typer.Typer(help="IMAP and POP3 mailboxes and gateway mailboxes to archive.",
                         no_args_is_help=True)
add_app = typer.Typer(help="Define a source (the password is asked for, or read from a file, "
                      "and kept encrypted).", no_args_is_help=True)
source_app.add_typer(add_app, name="add")
PLAIN_EVERY_S = 5.0


def register(app: typer.Typer) -> None:
    app.add_typer(source_app, name="source")
    app.command("sync")(sync)
    app.command("reconcile")(reconcile)


NameArg = Annotated[str, typer.Argument(help="A name for the source (letters, digits, . _ -).")]
Host = Annotated[str, typer.Option("--host", help="The server's host name or address.")]
Port = Annotated[int | None, typer.Option("--port", help="Default: from --tls and the protocol.",
                                          show_default=False)]
Tls = Annotated[str, typer.Option("--tls", help="implicit (IMAPS/POP3S), starttls, or none.")]
User = Annotated[str, typer.Option("--user", help="The mailbox owner, or the administrator "
                                   "for --scope users/domain.")]
PasswordFile = Annotated[Path | None, typer.Option(
    "--password-file", help="Read the password from this file (else it is asked for).",
    show_default=False)]
CaFile = Annotated[Path | None, typer.Option("--ca-file", help="Trust this CA (PEM) too.",
                                             show_default=False)]
Insecure = Annotated[bool, typer.Option(
    "--insecure-skip-verify", help="Accept any certificate (shown as a warning in status).")]
Scope = Annotated[str, typer.Option("--scope", help="mailbox, users (--users-file) or domain.")]
UsersFile = Annotated[Path | None, typer.Option(
    "--users-file", help="One address a line: the accounts to read.", show_default=False)]
Domain = Annotated[str | None, typer.Option("--domain", help="For --scope domain.",
                                            show_default=False)]
Auth = Annotated[str, typer.Option(
    "--auth", help="login; master (Dovecot's user*admin); authzid (SASL PLAIN authorization "
    "identity); for IMAP also xoauth2 or oauthbearer (OAuth2 access tokens: give "
    "--token-command, or --client-id with --tenant/--token-url, or --service-account-file).")]
Separator = Annotated[str, typer.Option("--master-separator",
                                        help="Separator of the master-user form.")]
Schedule = Annotated[str | None, typer.Option(
    "--interval", help="Sync this often under 'mailvault serve' (15m, 2h, 1d).",
    show_default=False)]
Cron = Annotated[str | None, typer.Option(
    "--cron", help="Or a cron expression in UTC ('*/30 * * * *').", show_default=False)]


@add_app.command("imap")
def add_imap(
    name: NameArg, host: Host, user: User, vault: VaultOption = None, port: Port = None,
    tls: Tls = "implicit", password_file: PasswordFile = None, ca_file: CaFile = None,
    insecure_skip_verify: Insecure = False, scope: Scope = "mailbox",
    users_file: UsersFile = None, domain: Domain = None, auth: Auth = "login",
    master_separator: Separator = "*",
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Only folders matching this pattern (repeatable; * and ?).",
        show_default=False)] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Skip folders matching this pattern (repeatable).",
        show_default=False)] = None,
    include_special: Annotated[list[str] | None, typer.Option(
        "--include-special", help="Also read these SPECIAL-USE folders: junk, trash.",
        show_default=False)] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only messages received on or after (YYYY-MM-DD; IMAP SEARCH).",
        show_default=False)] = None,
    before: Annotated[str | None, typer.Option(
        "--before", help="Only messages received before (YYYY-MM-DD).",
        show_default=False)] = None,
    interval: Schedule = None, cron: Cron = None,
    token_command: Annotated[str | None, typer.Option(
        "--token-command", help="OAuth2: a program that prints a fresh access token (run for "
        "each login, with the mailbox in MAILVAULT_OAUTH_USER).", show_default=False)] = None,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", help="OAuth2 client credentials at Microsoft 365: the tenant (domain or "
        "id); sets the token endpoint and the Exchange Online scope.",
        show_default=False)] = None,
    token_url: Annotated[str | None, typer.Option(
        "--token-url", help="OAuth2: another provider's token endpoint (https).",
        show_default=False)] = None,
    client_id: Annotated[str | None, typer.Option(
        "--client-id", help="OAuth2 client credentials: the application's client id.",
        show_default=False)] = None,
    client_secret_file: Annotated[Path | None, typer.Option(
        "--client-secret-file", help="OAuth2: read the client secret from this file (else "
        "it is asked for); kept encrypted.", show_default=False)] = None,
    service_account_file: Annotated[Path | None, typer.Option(
        "--service-account-file", help="OAuth2 for Google Workspace: the service account's "
        "JSON key (domain-wide delegation, a token per mailbox); kept encrypted.",
        show_default=False)] = None,
    oauth_scope: Annotated[str | None, typer.Option(
        "--oauth-scope", help="OAuth2: the scope asked for (default: Exchange Online's with "
        "--tenant, https://mail.google.com/ for a service account).",
        show_default=False)] = None,
) -> None:
    """Define an IMAP source (read-only: EXAMINE and BODY.PEEK, flags never change)."""
    oauth_values = {"token_command": token_command, "tenant": tenant, "token_url": token_url,
                    "client_id": client_id, "oauth_scope": oauth_scope}
    if service_account_file is not None:
        oauth_values["oauth_flow"] = "service-account"
    secret_file = client_secret_file or service_account_file
    if client_secret_file and service_account_file:
        raise InputError("give --client-secret-file or --service-account-file, "
                                 "not both.")
    _add(vault, password_file, {**{k: v for k, v in oauth_values.items() if v},
        "name": name, "kind": "imap", "host": host, "port": port, "tls": tls, "user": user,
        "ca_file": _path(ca_file), "insecure_skip_verify": insecure_skip_verify,
        "scope": scope, "users_file": _path(users_file), "domain": domain, "auth": auth,
        "master_separator": master_separator, "include": include or [],
        "exclude": exclude or [], "special_use": include_special or [], "since": since,
        "before": before, "interval": interval, "cron": cron}, secret_file)


@add_app.command("pop3")
def add_pop3(
    name: NameArg, host: Host, user: User, vault: VaultOption = None, port: Port = None,
    tls: Tls = "implicit", password_file: PasswordFile = None, ca_file: CaFile = None,
    insecure_skip_verify: Insecure = False, scope: Scope = "mailbox",
    users_file: UsersFile = None, domain: Domain = None, auth: Auth = "login",
    master_separator: Separator = "*",
    delete_after_archive: Annotated[bool, typer.Option(
        "--delete-after-archive", help="Delete each message at the server once the vault "
        "has committed it (default: never delete).")] = False,
    interval: Schedule = None, cron: Cron = None,
) -> None:
    """Define a POP3 source (UIDL-based: each message is fetched once)."""
    _add(vault, password_file, {
        "name": name, "kind": "pop3", "host": host, "port": port, "tls": tls, "user": user,
        "ca_file": _path(ca_file), "insecure_skip_verify": insecure_skip_verify,
        "scope": scope, "users_file": _path(users_file), "domain": domain, "auth": auth,
        "master_separator": master_separator, "delete_after_archive": delete_after_archive,
        "interval": interval, "cron": cron})


@add_app.command("gateway")
def add_gateway(
    name: NameArg,
    mailbox: Annotated[str, typer.Option("--mailbox", help="The gateway mailbox's id.")],
    vault: VaultOption = None,
    password_file: PasswordFile = None,
    host: Annotated[str, typer.Option(
        "--host", help="A remote gateway's POP3 service (default: this vault's own gateway "
        "mailboxes, read directly).")] = "",
    port: Port = None, tls: Tls = "implicit", ca_file: CaFile = None,
    insecure_skip_verify: Insecure = False, interval: Schedule = None, cron: Cron = None,
) -> None:
    """Pull a gateway mailbox into the vault; each message is deleted from the mailbox once
    the vault has committed it."""
    _add(vault, password_file, {
        "name": name, "kind": "gateway", "host": host, "port": port, "tls": tls,
        "user": mailbox, "ca_file": _path(ca_file),
        "insecure_skip_verify": insecure_skip_verify, "interval": interval, "cron": cron})


def _path(path: Path | None) -> str | None:
    return str(path.expanduser().resolve()) if path else None


def _add(vault: Path | None, password_file: Path | None, values: dict[str, Any],
         secret_file: Path | None = None) -> None:
    spec = sources.check_definition(values)
    secret = _secret(spec, password_file, secret_file)
    with open_vault(vault) as opened:
        warnings = sources.add_source(opened, principal(), spec, secret)
    where = (f"{spec.user}@{spec.host}:{spec.port}, TLS {spec.tls}" if spec.host
             else f"mailbox {spec.user} of this vault's gateway")
    print_line(f"Added {spec.kind} source {spec.name} ({where}); run 'mailvault sync "
               f"{spec.name}'.")
    for warning in warnings:
        print_line(f"warning: {warning}", to=errors)


def _secret(spec: SourceSpec, password_file: Path | None, secret_file: Path | None) -> str:
    """The password, client secret or service-account key, from its file or typed."""
    if not spec.oauth:
        if secret_file is not None:
            raise InputError("--client-secret-file and --service-account-file are "
                                     "for --auth xoauth2 or oauthbearer.")
        if password_file is not None:
            return read_password_file(password_file)
        return str(typer.prompt(f"Password for {spec.user}", hide_input=True))
    if password_file is not None:
        raise InputError("an OAuth2 source has no password: give "
                                 "--client-secret-file, --service-account-file or "
                                 "--token-command.")
    if spec.oauth_flow == "command":
        if secret_file is not None:
            raise InputError("a token command gets its own tokens: it needs no "
                                     "secret file.")
        return ""
    if spec.oauth_flow == "service-account":
        if secret_file is None:
            raise InputError("the service-account flow needs "
                                     "--service-account-file (the account's JSON key).")
        return read_key_file(secret_file)
    if secret_file is not None:
        return read_password_file(secret_file)
    return str(typer.prompt(f"Client secret of {spec.client_id}", hide_input=True))


@source_app.command("list")
def list_sources(vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Every source with its last and next run."""
    with open_vault(vault) as opened:
        described = sources.list_sources(opened, principal())
    if json_out:
        print_json(described)
        return
    if not described:
        console.print("No sources (add one with 'mailvault source add imap|pop3').")
    for entry in described:
        print_line(source_line(entry))
        for warning in entry["warnings"]:
            print_line(f"  warning: {warning}")


@source_app.command("show")
def show(name: Annotated[str, typer.Argument(help="The source.")], vault: VaultOption = None,
         json_out: JsonOption = False) -> None:
    """A source's settings (never its password)."""
    with open_vault(vault) as opened:
        details = sources.show_source(opened, principal(), name)
    if json_out:
        print_json(details.to_json())
        return
    for key, value in details.spec.to_json().items():
        if value not in (None, [], False, ""):
            print_line(f"{key}: {value}")
    print_line(source_line(details.status))
    for warning in details.status["warnings"]:
        print_line(f"warning: {warning}")


@source_app.command("test")
def check(name: Annotated[str, typer.Argument(help="The source.")],
          vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Log in to the source's accounts and look around (reads no mail); exit 1 on failure."""
    with open_vault(vault) as opened:
        check = sources.check_connection(opened, principal(), name)
    if json_out:
        print_json(check.to_json())
    else:
        print_line(f"{check.source} ({check.where}): "
                   + ("the connection works" if check.ok else "the connection failed"))
        for account in check.accounts:
            print_line(f"  {account.account}: {account.detail}",
                       to=console if account.ok else errors)
        if check.untried:
            print_line(f"  {check.untried} more accounts not tried")
    if not check.ok:
        raise typer.Exit(1)


@source_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The source.")],
           vault: VaultOption = None) -> None:
    """Forget a source and its sync state (the archived mail stays)."""
    with open_vault(vault) as opened:
        sources.remove_source(opened, principal(), name)
    print_line(f"Removed source {name}.")


def sync(name: Annotated[str | None, typer.Argument(help="One source (default: all).")] = None,
         vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Bring in what is new at the sources now, with a progress bar per account and folder."""
    with open_vault(vault) as opened, FolderBars() as bars:
        reports = sources.sync_now(opened, principal(), name, bars)
    if json_out:
        print_json([r.to_json() for r in reports])
    else:
        for report in reports:
            _print_report(report)
    if any(r.errors for r in reports):
        raise typer.Exit(1)


def _print_report(report: SyncReport) -> None:
    totals = report.totals()
    print_line(f"{report.source}: {report.status} in {report.seconds:.1f} s: "
               f"{totals['archived']} archived, {totals['duplicates']} already in the "
               f"vault, {totals['failed']} failed")
    table = Table("account", "folder", "new", "archived", "duplicates", "failed", "notes")
    for folder in report.folders.values():
        table.add_row(cell(folder.account), cell(folder.folder), str(folder.to_fetch),
                      str(folder.archived), str(folder.duplicates), str(folder.failed),
                      cell("; ".join(folder.notes)))
    if report.folders:
        console.print(table)
    for account, error in report.errors.items():
        print_line(f"{report.source} {account}: {error}", to=errors)


def reconcile(name: Annotated[str | None, typer.Argument(help="One source (default: all).")]
              = None, vault: VaultOption = None, json_out: JsonOption = False) -> None:
    """Count each folder at the source against the vault; exit 1 if anything is missing."""
    with open_vault(vault) as opened:
        results = sources.reconcile_sources(opened, principal(), name)
    if json_out:
        print_json([r.to_json() for r in results])
    else:
        for result in results:
            table = Table("account", "folder", "at source", "archived", "missing", "failed",
                          title=f"{result.source}: "
                          + ("complete" if result.complete else "INCOMPLETE"),
                          title_justify="left")
            for f in result.folders:
                table.add_row(cell(f.account), cell(f.folder), str(f.at_source), str(f.archived),
                              str(len(f.missing)), str(len(f.failed)))
            console.print(table)
            for f in result.folders:
                for uid, why in f.failed + f.missing:
                    print_line(f"  {f.account} {f.folder} {uid}: {why}")
            for account, folder, what in result.departed:
                print_line(f"  {account} {folder}: no longer at the source ({what})")
            for account, error in result.errors.items():
                print_line(f"{result.source} {account}: {error}", to=errors)
    if not all(r.complete for r in results):
        raise typer.Exit(1)


def source_line(entry: dict[str, Any]) -> str:
    """One source's status line (for 'source list' and 'status')."""
    text = f"{entry['name']} ({entry['kind']} {entry['user']}@{entry['where']})"
    last = entry["last_run"]
    if last is None:
        text += ": never synced"
    else:
        text += (f": last run {last['started']} {last['status']}"
                 f" in {last['seconds'] if last['seconds'] is not None else '?'} s, "
                 f"{last['archived']} archived, {last['duplicates']} duplicates, "
                 f"{last['failed']} failed")
        if last["error"]:
            text += f"; last error: {last['error']}"
    if entry["next_run"]:
        text += f"; next run {entry['next_run']}"
    return text


class FolderBars:
    """A progress bar per account and folder on a terminal; plain lines otherwise."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._last_line = 0.0

    def __enter__(self) -> FolderBars:
        if sys.stderr.isatty():
            # Folder names come from the server: never markup.
            self._progress = Progress(TextColumn("{task.description}", markup=False),
                                      BarColumn(), MofNCompleteColumn(), console=errors)
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def folder(self, account: str, folder: str, total: int) -> None:
        if self._progress is None:
            if total:
                print_line(f"{account} {folder}: {total} to fetch", to=errors)
            return
        key = (account, folder)
        if key in self._tasks:
            self._progress.update(self._tasks[key], total=total)
        elif total:
            self._tasks[key] = self._progress.add_task(line(f"{account} {folder}"),
                                                       total=total)

    def progress(self, account: str, folder: str, done: int) -> None:
        if self._progress is not None:
            task = self._tasks.get((account, folder))
            if task is not None:
                self._progress.update(task, completed=done)
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            self._last_line = time.monotonic()
            print_line(f"{account} {folder}: {done} done", to=errors)
