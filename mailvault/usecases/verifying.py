"""Verifying one message now: its bytes read back from the store and checked against its
SHA-256, the result kept (``message_checks``) and audited.

``mailvault verify`` checks the whole vault; this is the single-message check a reader asks
for from a message's page, so that "last verified" on that page is a fact with a date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from mailvault.accounts.principal import Principal
from mailvault.errors import StoreError
from mailvault.store import audit, catalog, schema
from mailvault.usecases.finding import reachable
from mailvault.vault import Vault


@dataclass(frozen=True)
class Check:
    """The outcome of one verification of a message."""

    message_id: int
    at: datetime
    ok: bool
    detail: str
    actor: str

    def to_json(self) -> dict[str, object]:
        return {"message": self.message_id, "at": self.at.isoformat(), "ok": self.ok,
                "detail": self.detail, "by": self.actor}


def verify_message(vault: Vault, who: Principal, ref: str) -> Check:
    """Read the message's bytes back from its tier, check them against its SHA-256, store
    and audit the outcome. A failed check is a result, not an error: it is stored too."""
    row = reachable(vault, who, ref, "verify-message")
    try:
        vault.read_raw(row)
        ok, detail = True, f"the {row.size} bytes read back match SHA-256 {row.sha256}."
    except StoreError as exc:
        ok, detail = False, str(exc)
    at = catalog.now()
    with vault.engine.begin() as conn:
        conn.execute(insert(schema.message_checks).values(
            message_id=row.id, at=at, ok=ok, detail=detail, actor=who.name))
        audit.record(conn, who.name, "verify-message", {
            "message": row.id, "sha256": row.sha256, "ok": ok, "detail": detail})
    return Check(row.id, _when(at), ok, detail, who.name)


def last_check(vault: Vault, who: Principal, ref: str) -> Check | None:
    """The newest stored verification of a message (None: never verified on its own)."""
    row = reachable(vault, who, ref, "view")
    checks = schema.message_checks
    with vault.engine.connect() as conn:
        found = conn.execute(select(checks).where(checks.c.message_id == row.id)
                             .order_by(checks.c.at.desc(), checks.c.id.desc()).limit(1)).first()
    if found is None:
        return None
    return Check(row.id, _when(found.at), bool(found.ok), found.detail, found.actor)


def _when(epoch: int) -> datetime:
    value = catalog.from_epoch(epoch)
    assert value is not None
    return value
