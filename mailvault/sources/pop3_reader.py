"""Reading one POP3 account (or gateway mailbox): every message whose UIDL has not been
archived yet; and, when the source says so (a gateway source always does), deleting at the
server what the vault has durably committed."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from mailvault.errors import SourceError
from mailvault.records import Incoming, Provenance, Unreadable
from mailvault.sources import state
from mailvault.sources.feed import Item
from mailvault.sources.maildrop import Maildrop, open_maildrop
from mailvault.sources.pop3 import Listed
from mailvault.sources.reading import ReadContext, with_retries
from mailvault.sources.scope import Account
from mailvault.store import schema

FOLDER = "INBOX"


def read_account(ctx: ReadContext, account: Account) -> Iterator[Item]:
    """Every message of the maildrop not archived before, in maildrop order."""
    handed: set[str] = set()

    def attempt() -> Iterator[Item]:
        session = open_maildrop(ctx.vault, ctx.spec, ctx.endpoint, account.credentials)
        try:
            with ctx.vault.engine.connect() as conn:
                seen = state.seen_uidls(conn, ctx.spec.name, account.address)
            done = seen | handed
            todo = [m for m in session.listing() if m.uidl not in done]
            report = ctx.report.folder(account.address, FOLDER)
            report.to_fetch = report.done + len(todo)
            ctx.observer.folder(account.address, FOLDER, report.to_fetch)
            for listed in todo:
                if ctx.stop.is_set():
                    break
                yield _item(ctx, account, listed, session)
                handed.add(listed.uidl)
            session.quit()
        finally:
            session.close()

    return with_retries(ctx, account.address, attempt)


def _item(ctx: ReadContext, account: Account, listed: Listed, session: Maildrop) -> Item:
    provenance = Provenance(kind=ctx.spec.kind, source=ctx.spec.name, folder=FOLDER,
                            account=account.address, item=listed.uidl)
    try:
        return Incoming(session.retrieve(listed.number), provenance)
    except SourceError as exc:
        if exc.retryable:
            raise
        return Unreadable(provenance, f"the server refused to return it: {exc}")


def delete_archived(ctx: ReadContext, account: Account) -> int:
    """Delete at the server every message whose UIDL is archived (not those that failed).

    Runs after the pipeline has committed; the server applies deletions at QUIT, so a
    connection lost before QUIT deletes nothing. Returns how many were deleted.
    """
    failures = schema.failures
    with ctx.vault.engine.connect() as conn:
        done = state.seen_uidls(conn, ctx.spec.name, account.address)
        failed = set(conn.execute(select(failures.c.item).where(
            failures.c.kind == ctx.spec.kind, failures.c.source == ctx.spec.name,
            failures.c.resolved.is_(False))).scalars())
    session = open_maildrop(ctx.vault, ctx.spec, ctx.endpoint, account.credentials)
    try:
        doomed = [m for m in session.listing() if m.uidl in done and m.uidl not in failed]
        for listed in doomed:
            session.delete(listed.number)
        session.quit()
    finally:
        session.close()
    return len(doomed)
