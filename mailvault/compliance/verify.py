"""``mailvault verify``: re-read every blob, check every hash, report every problem found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailvault.compliance import object_lock
from mailvault.compliance.integrity import (
    archive_problems,
    index_problems,
    retention_problems,
    row_problems,
    volume_problems,
)
from mailvault.errors import StoreError
from mailvault.store import audit, catalog
from mailvault.store.blobs import KIND_PART

if TYPE_CHECKING:
    from mailvault.vault import Vault


@dataclass
class VerifyReport:
    """What was checked and each problem found (not just the first)."""

    messages_checked: int = 0
    parts_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "messages_checked": self.messages_checked,
                "parts_checked": self.parts_checked, "problems": self.problems}


def verify(vault: Vault, actor: str, progress: Callable[[int], None] | None = None
           ) -> VerifyReport:
    """Check every volume file's length, every part, every message's reconstruction and hash,
    the catalog row against the message's own headers, the index against the catalog, the
    stored retain-until dates against the policies, each bucket object's lock against its
    messages' retention and holds (blobs in S3), the audit chain (and its head file), and
    that every message the audit log says was archived is still in the catalog or was
    disposed of. Every problem is reported, and the result is itself written to the audit
    log."""
    report = VerifyReport()
    report.problems.extend(volume_problems(vault))
    with vault.engine.connect() as conn:
        for digest, tier, location, _size in catalog.iter_parts(conn):
            try:
                vault.blobs.read(tier, location, KIND_PART, bytes.fromhex(digest))
            except StoreError as exc:
                report.problems.append(f"part {digest[:16]}: {exc}")
            report.parts_checked += 1
        tiers: dict[str, int] = {}
        for row in catalog.iter_messages(conn):
            tiers[row.tier] = tiers.get(row.tier, 0) + 1
            try:
                raw = vault.read_raw(row)
            except StoreError as exc:
                report.problems.append(f"message {row.id} ({row.sha256[:16]}): {exc}")
            else:
                report.problems.extend(row_problems(row, raw))
            report.messages_checked += 1
            if progress and report.messages_checked % 500 == 0:
                progress(report.messages_checked)
        report.problems.extend(index_problems(vault, tiers))
        report.problems.extend(retention_problems(vault))
        report.problems.extend(object_lock.lock_problems(vault))
        report.problems.extend(audit.verify(conn))
        report.problems.extend(archive_problems(conn))
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "verify", {"ok": report.ok,
                                             "messages": report.messages_checked,
                                             "parts": report.parts_checked,
                                             "problems": len(report.problems)})
    return report
