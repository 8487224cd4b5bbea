"""``mailvault migrate``: an embedded vault moved to PostgreSQL and/or S3, verified.

The shape (docs/postgresql.md, "Moving an embedded vault"): a new vault folder with the same
keys, its catalog copied exactly once in chunks, its volumes uploaded with their Object Lock,
its index copied; then every message read back through the new vault and compared with what
the source archived. Only a clean comparison ends with the migration's audit entry in the
new vault; the source vault is only read, and stays usable as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.backup import migrating
from mailvault.backup.destination import Destination as Destination
from mailvault.compliance import object_lock
from mailvault.store import audit, catalog_copy, file_modes
from mailvault.vault import Vault, default_vault_path

ACTION = "migrate"


@dataclass
class Migrated:
    """What a migrate run did and found."""

    source: Path
    target: Path
    messages: int
    rows_copied: dict[str, int]
    volumes_copied: int
    volumes_uploaded: list[int]
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """``migrate --json``."""
        return {"ok": self.ok, "source": str(self.source), "target": str(self.target),
                "messages": self.messages, "rows_copied": self.rows_copied,
                "volumes_copied": self.volumes_copied,
                "volumes_uploaded": self.volumes_uploaded, "problems": self.problems,
                "seconds": round(self.seconds, 3)}


def migrate(who: Principal, source_path: Path | None, to: Destination,
            progress: Callable[[str, int], None] | None = None) -> Migrated:
    """Move the vault at ``source_path`` to ``to`` (or finish a move a killed run left),
    then verify it message by message; ``problems`` says what differs, one sentence each."""
    require(who, Permission.BACKUP)
    started = time.monotonic()
    to = Destination(to.folder.expanduser().resolve(), to.catalog_url,
                     to.catalog_password_file, to.blobs, to.s3_endpoint, to.s3_credentials)
    with file_modes.owner_only_umask(), Vault.open(source_path or default_vault_path()) as source:
        migrating.check(source, to)
        migrating.prepare(source, to)
        rows = migrating.copy_catalog(source, to, progress)
        migrating.copy_search_index(source, to)
        with Vault.open(to.folder) as target:
            copied = migrating.copy_volumes(source, target)
            uploaded = object_lock.upload_pending(target).uploaded
            problems = migrating.mismatches(source, target)
            messages = catalog_copy.row_counts(source.engine)["messages"]
            if not problems:
                _record(target, who, source, to, messages)
    if not problems:
        migrating.done(to.folder)
    return Migrated(source.path, to.folder, messages, rows, copied, uploaded, problems,
                    time.monotonic() - started)


def _record(target: Vault, who: Principal, source: Vault, to: Destination,
            messages: int) -> None:
    """The migration's one audit entry (once, however often the run is taken up again)."""
    with target.engine.begin() as conn:
        previous = audit.last(conn, ACTION)
        if previous is not None and previous.detail.get("from") == str(source.path):
            return
        seq, digest = audit.head(conn)
        audit.record(conn, who.name, ACTION, {
            "from": str(source.path), "catalog": to.catalog_url or "sqlite",
            "blobs": to.blobs or "local", "messages": messages,
            "source_head": f"{seq}:{digest}"})
