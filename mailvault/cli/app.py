"""The Typer application and what every command shares: the --vault option, the actor,
JSON output, and opening the vault."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.cli import terminal_text
from mailvault.usecases import vaults

if TYPE_CHECKING:
    from mailvault.vault import Vault

app = typer.Typer(
    name="mailvault",
    help="An email archive: byte-exact, tamper-evident, searchable in milliseconds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

VaultOption = Annotated[
    Path | None,
    typer.Option("--vault", help="The vault folder (default: $MAILVAULT_VAULT or ./vault).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
# A query may start with a negation ("-in:trash"): it is the query, not an unknown option.
QUERY_COMMAND = {"ignore_unknown_options": True}

# soft_wrap: a line stays one line when the output is a file or a pipe (scripts read it);
# tables still fit the width.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


@contextmanager
def open_vault(path: Path | None) -> Iterator[Vault]:
    """Open the vault named by --vault (or the default) for one command, under umask 0o077:
    what SQLite, Tantivy and the processes the command starts create is owner-only too."""
    with vaults.opened(path) as vault:
        yield vault


def actor() -> str:
    """Who is acting, for the audit log: $MAILVAULT_ACTOR or the operating-system user."""
    if os.environ.get("MAILVAULT_ACTOR"):
        return os.environ["MAILVAULT_ACTOR"]
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def principal() -> Principal:
    """The person at the archive's own shell: administrator and auditor (whoever runs the
    command line can read the vault's files and keys anyway), named as ``actor()`` says."""
    return Principal(name=actor(), roles=frozenset({Role.ADMIN, Role.AUDITOR}))


def print_json(data: Any) -> None:
    """JSON on stdout, UTF-8, one document (exact; see terminal_text.json_text)."""
    typer.echo(terminal_text.json_text(json.dumps(data, ensure_ascii=False, indent=2,
                                                  default=str)))


def print_line(text: str, to: Console = console) -> None:
    """One line that may hold text from mail, files or servers: control characters escaped,
    never read as Rich markup or highlighted."""
    to.print(terminal_text.line(text), highlight=False, markup=False)


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"
