"""The command line: parses arguments, opens the vault, calls the use cases, renders results.

Each group of commands lives in its own module and registers itself on ``app``. Errors from
the MailvaultError tree become one line on stderr and exit status 1; a traceback means a bug.
"""

from __future__ import annotations

import sys

import typer

from mailvault.cli import (
    archiving,
    audit_log,
    backups,
    cases,
    compliance_dispose,
    compliance_retention,
    compliance_tiers,
    exporting,
    finding,
    gateway,
    health,
    restoring,
    reviewing,
    serving,
    sources,
    subjects,
    terminal_text,
    users,
)
from mailvault.cli.app import app
from mailvault.errors import MailvaultError

archiving.register(app)
finding.register(app)
health.register(app)
audit_log.register(app)
serving.register(app)
sources.register(app)
compliance_tiers.register(app)
compliance_retention.register(app)
compliance_dispose.register(app)
users.register(app)
reviewing.register(app)
restoring.register(app)
subjects.register(app)
backups.register(app)
cases.register(app)
exporting.register(app)
gateway.register(app)


def main() -> None:
    """Entry point of the ``mailvault`` command."""
    try:
        app()
    except MailvaultError as exc:
        # A file name in the sentence may hold bytes that are not UTF-8, a server's words
        # control characters: shown escaped.
        typer.echo(terminal_text.line(f"mailvault: {exc}"), err=True)
        sys.exit(1)
