"""Reading one IMAP account: folders in scope, renamed and deleted folders, UIDVALIDITY, and
the new UIDs of each folder fetched in batches bounded by count and bytes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mailvault.errors import SourceError
from mailvault.records import Incoming, Provenance, Unreadable
from mailvault.sources import scope, state
from mailvault.sources.feed import Item
from mailvault.sources.imap import Fetched, FolderState, ImapSession
from mailvault.sources.reading import ReadContext, with_retries
from mailvault.sources.scope import Account
from mailvault.sources.state import FolderMark


@dataclass
class _Position:
    """How far this run has handed messages on, per folder: (UIDVALIDITY, UID); and which
    UIDs were being fetched when a connection dropped (a server may drop the connection on
    a message it cannot read, as Dovecot does: such a batch is retried one UID at a time,
    and a UID that drops the connection alone is recorded as a failure and passed)."""

    handed: dict[str, tuple[int, int]] = field(default_factory=dict)
    checked_folders: bool = False
    suspects: dict[str, set[int]] = field(default_factory=dict)
    dropped_alone: dict[tuple[str, int], str] = field(default_factory=dict)


def read_account(ctx: ReadContext, account: Account) -> Iterator[Item]:
    """Every new message of the account's folders in scope, in UID order per folder."""
    position = _Position()

    def attempt() -> Iterator[Item]:
        with ImapSession(ctx.endpoint, account.credentials) as session:
            yield from _read(ctx, session, account, position)

    return with_retries(ctx, account.address, attempt)


def _read(ctx: ReadContext, session: ImapSession, account: Account,
          position: _Position) -> Iterator[Item]:
    names = _folders_in_scope(ctx, session, account, position)
    for name in names:
        if ctx.stop.is_set():
            return
        yield from _read_folder(ctx, session, account, name, position)


def _folders_in_scope(ctx: ReadContext, session: ImapSession, account: Account,
                      position: _Position) -> list[str]:
    listed = scope.with_special_use(session.folders())
    names = []
    for folder in listed:
        reason = scope.wanted(folder, ctx.spec)
        if reason:
            if not position.checked_folders:
                ctx.report.skipped.append((account.address, folder.name, reason))
        else:
            names.append(folder.name)
    if not position.checked_folders:
        _follow_renames(ctx, session, account, {f.name for f in listed}, names)
        position.checked_folders = True
    # INBOX first, then the rest by name, so that progress reads the same way every run.
    return sorted(names, key=lambda n: (n.upper() != "INBOX", n))


def _follow_renames(ctx: ReadContext, session: ImapSession, account: Account,
                    listed: set[str], in_scope: list[str]) -> None:
    """Folders synced before and no longer listed were renamed (a new folder has their
    UIDVALIDITY: the state moves with them, nothing is fetched again) or deleted."""
    source = ctx.spec.name
    with ctx.vault.engine.connect() as conn:
        marks = state.folder_marks(conn, source, account.address)
    gone = [m for m in marks.values() if m.status == state.ACTIVE and m.folder not in listed]
    if not gone:
        return
    fresh = [n for n in in_scope if n not in marks or marks[n].status != state.ACTIVE]
    fresh_validity = {session.examine(n).uidvalidity: n for n in fresh}
    with ctx.vault.engine.begin() as conn:
        for mark in gone:
            new_name = fresh_validity.pop(mark.uidvalidity, None)
            if new_name is not None:
                state.set_folder(conn, source, account.address,
                                 FolderMark(new_name, mark.uidvalidity, mark.highest_uid))
                state.set_folder(conn, source, account.address,
                                 FolderMark(mark.folder, mark.uidvalidity, mark.highest_uid,
                                            state.RENAMED, new_name))
                ctx.report.folder(account.address, new_name).notes.append(
                    f"renamed from {mark.folder}")
            else:
                state.set_folder(conn, source, account.address,
                                 FolderMark(mark.folder, mark.uidvalidity, mark.highest_uid,
                                            state.GONE, "deleted at the source"))
                ctx.report.folder(account.address, mark.folder).notes.append(
                    "deleted at the source (its archived mail stays)")


def _read_folder(ctx: ReadContext, session: ImapSession, account: Account, name: str,
                 position: _Position) -> Iterator[Item]:
    report = ctx.report.folder(account.address, name)
    try:
        folder = session.examine(name)
    except SourceError as exc:
        if exc.retryable:
            raise
        # Deleted between LIST and EXAMINE, or not open to this login: the others go on.
        report.notes.append(f"not read: {exc}")
        ctx.report.skipped.append((account.address, name, str(exc)))
        return
    report.uidvalidity = folder.uidvalidity
    above = _starting_point(ctx, account, name, folder, report.notes)
    handed = position.handed.get(name)
    if handed and handed[0] == folder.uidvalidity:
        above = max(above, handed[1])
    uids = (session.search(above, ctx.spec.since, ctx.spec.before) if folder.exists else [])
    report.to_fetch = report.done + len(uids)
    ctx.observer.folder(account.address, name, report.to_fetch)
    if not uids:
        return
    sizes = session.sizes(uids)
    suspects = position.suspects.get(name, set())
    for batch in _batches(uids, sizes, ctx.settings.fetch_batch,
                          ctx.settings.fetch_batch_mb * 1024 * 1024):
        if ctx.stop.is_set():
            return
        parts = [[uid] for uid in batch] if suspects & set(batch) else [batch]
        for part in parts:
            for fetched in _fetch(session, name, part, position):
                yield _item(ctx, account, name, folder, fetched)
                position.handed[name] = (folder.uidvalidity, fetched.uid)


def _fetch(session: ImapSession, folder: str, uids: list[int],
           position: _Position) -> list[Fetched]:
    if len(uids) == 1 and (folder, uids[0]) in position.dropped_alone:
        reason = position.dropped_alone[(folder, uids[0])]
        return [Fetched(uids[0], None, reason="the server dropped the connection when asked "
                        f"for this message alone ({reason})")]
    try:
        return session.fetch(uids)
    except SourceError as exc:
        if exc.retryable:
            if len(uids) == 1:
                position.dropped_alone[(folder, uids[0])] = str(exc)
            else:
                position.suspects[folder] = set(uids)
        raise


def _starting_point(ctx: ReadContext, account: Account, name: str, folder: FolderState,
                    notes: list[str]) -> int:
    """The highest UID already archived, after recording a first sight or a new UIDVALIDITY."""
    source = ctx.spec.name
    with ctx.vault.engine.connect() as conn:
        mark = state.folder_marks(conn, source, account.address).get(name)
    if mark is not None and mark.status == state.ACTIVE:
        if mark.uidvalidity == folder.uidvalidity:
            return mark.highest_uid
        notes.append(f"UIDVALIDITY changed from {mark.uidvalidity} to {folder.uidvalidity}: "
                     "rescanned (messages already archived are not stored again)")
    elif not notes:
        notes.append("first sync")
    with ctx.vault.engine.begin() as conn:
        state.set_folder(conn, source, account.address, FolderMark(name, folder.uidvalidity, 0))
    return 0


def _batches(uids: list[int], sizes: dict[int, int], most: int,
             most_bytes: int) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= most or total + size > most_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _item(ctx: ReadContext, account: Account, folder: str, state_: FolderState,
          fetched: Fetched) -> Item:
    spec = ctx.spec
    provenance = Provenance(
        kind="imap", source=spec.name, folder=folder, account=account.address,
        item=f"imap://{account.address}@{spec.host}:{spec.port}/{folder}"
             f";UIDVALIDITY={state_.uidvalidity}/;UID={fetched.uid}",
        uidvalidity=state_.uidvalidity, uid=fetched.uid, internal_date=fetched.internal_date,
        flags=fetched.flags)
    if fetched.raw is None:
        return Unreadable(provenance, fetched.reason)
    return Incoming(fetched.raw, provenance)
