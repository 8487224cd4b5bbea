"""Sync state per source, account and folder: the UIDVALIDITY and the highest UID archived
(IMAP), the UIDLs archived (POP3). Advanced only once the messages are durable."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from mailvault.store import catalog, database, schema

ACTIVE = "active"
GONE = "gone"
RENAMED = "renamed"

_folders = schema.source_folders


@dataclass(frozen=True)
class FolderMark:
    """How far one folder has been archived."""

    folder: str
    uidvalidity: int
    highest_uid: int
    status: str = ACTIVE
    note: str = ""


def folder_marks(conn: Connection, source: str, account: str) -> dict[str, FolderMark]:
    """Every folder ever synced for the account, by name."""
    rows = conn.execute(select(_folders).where(_folders.c.source == source,
                                               _folders.c.account == account))
    return {r.folder: FolderMark(r.folder, r.uidvalidity, r.highest_uid, r.status, r.note)
            for r in rows}


def set_folder(conn: Connection, source: str, account: str, mark: FolderMark) -> None:
    """Write a folder's mark as given (a first sight, a new UIDVALIDITY, a status)."""
    values = {"uidvalidity": mark.uidvalidity, "highest_uid": mark.highest_uid,
              "status": mark.status, "note": mark.note, "updated_at": catalog.now()}
    database.upsert(conn, _folders, ["source", "account", "folder"],
                    {"source": source, "account": account, "folder": mark.folder, **values})


def advance(conn: Connection, source: str, account: str, folder: str, uidvalidity: int,
            uid: int) -> None:
    """Record that every UID up to ``uid`` under ``uidvalidity`` is durable in the vault."""
    conn.execute(update(_folders).where(
        _folders.c.source == source, _folders.c.account == account,
        _folders.c.folder == folder, _folders.c.uidvalidity == uidvalidity,
        _folders.c.highest_uid < uid).values(highest_uid=uid, updated_at=catalog.now()))


def seen_uidls(conn: Connection, source: str, account: str) -> set[str]:
    """POP3 UIDLs already archived (or recorded as failures) for the account."""
    seen = schema.source_seen
    return set(conn.execute(select(seen.c.uidl).where(seen.c.source == source,
                                                      seen.c.account == account)).scalars())


def add_seen(conn: Connection, source: str, account: str, uidls: Iterable[str]) -> None:
    """Remember POP3 UIDLs as done."""
    rows = [{"source": source, "account": account, "uidl": u, "at": catalog.now()}
            for u in set(uidls)]
    if rows:
        conn.execute(database.insert_ignoring(conn, schema.source_seen).values(rows))
