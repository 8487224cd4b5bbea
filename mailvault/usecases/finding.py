"""Finding and reading mail: search, count, open a message, its raw bytes, an attachment.

Who may see what is decided here, once, for every face. An auditor searches and reads every
message; a user only the messages one of their addresses is party to (sender, a header
recipient, or an envelope recipient: Bcc and journal copies included); anyone else none. A
message outside someone's reach is "not found", in the same words as one that does not
exist, and the attempt is audited. Every search, count, view and download is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from mailvault.accounts.principal import Principal, allows, require
from mailvault.accounts.roles import Permission
from mailvault.compliance.holds import resolve_holds
from mailvault.errors import NotFoundError, QueryError
from mailvault.message import ParsedMessage, display_headers, parse
from mailvault.mime_leaves import Leaf, leaf
from mailvault.records import Provenance
from mailvault.search.document import message_ids
from mailvault.search.query import And, Node, Not, Or, Party, Term
from mailvault.search.query import parse as parse_query
from mailvault.store import audit, catalog
from mailvault.store.catalog import MessageRow
from mailvault.vault import Vault

# How many times the thread is followed outward (replies of replies) from a message.
_THREAD_ROUNDS = 3
# What is kept of a reference a person typed, in the audit entry of a refused look-up.
_REF_CHARS = 100


SORT_ORDERS = ("newest", "oldest", "largest")
# Facet values listed per facet (the most frequent first).
FACET_VALUES = 20


@dataclass(frozen=True)
class Facets:
    """How the matches of a query divide by year, sender domain, folder and tier, and how
    many have attachments: the counts of the messages the principal may see only."""

    total: int
    year: list[tuple[str, int]]
    sender_domain: list[tuple[str, int]]
    folder: list[tuple[str, int]]
    tier: list[tuple[str, int]]
    with_attachment: int

    def to_json(self) -> dict[str, object]:
        def pairs(values: list[tuple[str, int]]) -> list[dict[str, object]]:
            return [{"value": value, "count": count} for value, count in values]

        return {"total": self.total, "year": pairs(self.year),
                "sender_domain": pairs(self.sender_domain), "folder": pairs(self.folder),
                "tier": pairs(self.tier),
                "attachment": {"with": self.with_attachment,
                               "without": self.total - self.with_attachment}}


@dataclass(frozen=True)
class SearchPage:
    """One page of results in the order asked for, how many messages match in all, and
    (when asked for) the facets of all the matches."""

    total: int
    rows: list[MessageRow]
    offset: int
    limit: int
    order: str = "newest"
    facets: Facets | None = None


@dataclass(frozen=True)
class OpenedMessage:
    """A message as a person is shown it: catalog row, exact bytes, headers, arrivals."""

    row: MessageRow
    raw: bytes
    headers: list[tuple[str, str]]
    arrivals: list[Provenance]
    parsed: ParsedMessage


def search(vault: Vault, who: Principal, text: str, *, limit: int = 50,
           offset: int = 0, order: str = "newest", with_facets: bool = False) -> SearchPage:
    """The messages ``who`` may see that match the query, in ``order`` (newest, oldest or
    largest first), with the facets of every match when asked for (audited once)."""
    node = _scoped(vault, who, parse_query(text))
    total, ids = vault.index.search(node, limit=max(limit, 0), offset=max(offset, 0),
                                    order=order)
    facets = _facets(vault, node, total) if with_facets else None
    with vault.engine.begin() as conn:
        rows = catalog.messages_by_id(conn, ids)
        audit.record(conn, who.name, "search", {"query": text, "matches": total,
                                                "shown": len(rows), "offset": offset})
    return SearchPage(total, rows, offset, limit, order, facets)


def facets(vault: Vault, who: Principal, text: str) -> Facets:
    """The facets of the messages ``who`` may see that match the query (audited)."""
    node = _scoped(vault, who, parse_query(text))
    total = vault.index.count(node)
    counted = _facets(vault, node, total)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "facets", {"query": text, "matches": total})
    return counted


def _facets(vault: Vault, node: Node, total: int) -> Facets:
    counts = vault.index.facet_counts(node, FACET_VALUES)
    with_attachment = dict(counts["has"]).get("attachment", 0)
    return Facets(total=total, year=sorted(counts["year"], reverse=True),
                  sender_domain=counts["fromdomain"], folder=counts["folderkey"],
                  tier=counts["tier"], with_attachment=with_attachment)


def conversation(vault: Vault, who: Principal, ref: str) -> list[MessageRow]:
    """The conversation a message belongs to, oldest first: the messages it replies to or
    references (by Message-ID), the messages that reply to or reference it or them, as far
    as ``who`` may see them (audited with the ids shown)."""
    row = _reachable(vault, who, ref, Permission.READ_ALL, "conversation")
    with vault.engine.connect() as conn:
        own = catalog.message_id_header(conn, row.id)
    parsed = parse(vault.read_raw(row))
    wanted = set(message_ids(f"{own} {parsed.in_reply_to} {parsed.references}"))
    found: dict[int, MessageRow] = {}
    for _round in range(_THREAD_ROUNDS):
        with vault.engine.connect() as conn:
            rows = catalog.messages_by_message_id(conn, wanted)
            replies = catalog.messages_by_id(conn, vault.index.referring(sorted(wanted)))
        new = [r for r in (*rows, *replies) if r.id not in found]
        if not new:
            break
        found.update((r.id, r) for r in new)
        with vault.engine.connect() as conn:
            wanted |= {m for r in new
                       for m in message_ids(catalog.message_id_header(conn, r.id))}
    with vault.engine.begin() as conn:
        if not allows(who, Permission.READ_ALL):
            found = {i: r for i, r in found.items()
                     if catalog.is_party(conn, i, who.addresses)}
        found.setdefault(row.id, row)
        thread = sorted(found.values(), key=_by_date)
        audit.record(conn, who.name, "conversation", {
            "message": row.id, "shown": [r.id for r in thread]})
    return thread


def count(vault: Vault, who: Principal, text: str) -> int:
    """How many messages ``who`` may see match the query (audited like a search)."""
    total = vault.index.count(_scoped(vault, who, parse_query(text)))
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "count", {"query": text, "matches": total})
    return total


def open_message(vault: Vault, who: Principal, ref: str) -> OpenedMessage:
    """A message by id or SHA-256 prefix, read back and hash-checked (audited as a view)."""
    row = _reachable(vault, who, ref, Permission.READ_ALL, "view")
    with vault.engine.connect() as conn:
        arrivals = catalog.provenances(conn, row.id)
    raw = vault.read_raw(row)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "view", {"message": row.id, "sha256": row.sha256})
    return OpenedMessage(row=row, raw=raw, headers=display_headers(raw), arrivals=arrivals,
                         parsed=parse(raw))


def raw_message(vault: Vault, who: Principal, ref: str, to: str) -> tuple[MessageRow, bytes]:
    """A message's exact bytes, checked against its SHA-256 (audited as a download to
    ``to``, which says where they went: a file, stdout, a web client)."""
    row = _reachable(vault, who, ref, Permission.DOWNLOAD, "download")
    data = vault.read_raw(row)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "download", {"message": row.id, "sha256": row.sha256,
                                                  "to": to})
    return row, data


def attachment(vault: Vault, who: Principal, ref: str, number: int,
               to: str) -> tuple[MessageRow, Leaf]:
    """One leaf part of a message (see ``mime_leaves``), decoded (audited as a download)."""
    row = _reachable(vault, who, ref, Permission.DOWNLOAD, "download-attachment")
    part = leaf(vault.read_raw(row), number)
    if part is None:
        raise NotFoundError(f"message {row.id} has no part {number}.")
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "download-attachment", {
            "message": row.id, "sha256": row.sha256, "part": number,
            "filename": part.filename, "to": to})
    return row, part


def allow_remote_images(vault: Vault, who: Principal, ref: str) -> MessageRow:
    """Record that ``who`` chose to load a message's remote images (audited: a remote image
    tells its sender that, when and from where the message was read)."""
    row = _reachable(vault, who, ref, Permission.READ_ALL, "remote-images")
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "remote-images", {"message": row.id,
                                                       "sha256": row.sha256})
    return row


def _by_date(row: MessageRow) -> tuple[bool, float, int]:
    """Oldest first, undated messages last."""
    return (row.date is None, row.date.timestamp() if row.date else 0.0, row.id)


def reachable(vault: Vault, who: Principal, ref: str, action: str) -> MessageRow:
    """The message ``ref`` names if ``who`` may read it (any message with read-all, their
    own with own-mail access); "not found", audited, otherwise. For use cases about one
    message that live in other modules."""
    return _reachable(vault, who, ref, Permission.READ_ALL, action)


def scoped_query(vault: Vault, who: Principal, text: str) -> Node:
    """A query as ``who`` may run it (limited to their own mail unless they may search all;
    ``hold:`` resolved): for use cases in other modules that select mail by a query."""
    return _scoped(vault, who, parse_query(text))


def _scoped(vault: Vault, who: Principal, node: Node) -> Node:
    """The query limited to what ``who`` may search; ``hold:`` resolved for those who may
    see holds."""
    if _mentions_hold(node):
        if not allows(who, Permission.HOLDS):
            raise QueryError("hold: can only be searched by those who manage legal holds.")
        node = resolve_holds(vault, node)
    if allows(who, Permission.SEARCH_ALL):
        return node
    require(who, Permission.OWN_MAIL)
    return And((node, Party(frozenset(who.addresses))))


def _mentions_hold(node: Node) -> bool:
    if isinstance(node, Term):
        return node.field == "hold"
    if isinstance(node, Not):
        return _mentions_hold(node.child)
    if isinstance(node, And | Or):
        return any(_mentions_hold(child) for child in node.children)
    return False


def _reachable(vault: Vault, who: Principal, ref: str, everything: Permission,
               action: str) -> MessageRow:
    """The message ``ref`` names, if ``who`` may reach it: with ``everything`` any message,
    with own-mail access one they are party to. Otherwise "not found", audited."""
    if allows(who, everything):
        with vault.engine.connect() as conn:
            return catalog.resolve(conn, ref)
    require(who, Permission.OWN_MAIL)
    with vault.engine.begin() as conn:
        row = _party_row(conn, who, ref)
        if row is not None:
            return row
        audit.record(conn, who.name, "denied", {"action": action, "ref": ref[:_REF_CHARS]})
    raise NotFoundError(f"there is no message {ref[:_REF_CHARS]!r} among your mail.")


def _party_row(conn: Connection, who: Principal, ref: str) -> MessageRow | None:
    try:
        row = catalog.resolve(conn, ref)
    except NotFoundError:
        return None
    return row if catalog.is_party(conn, row.id, who.addresses) else None
