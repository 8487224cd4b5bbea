"""Finding and reading mail: search, count, open a message, its raw bytes, an attachment.

Who may see what is decided here, once, for every face. An auditor searches and reads every
message; a user only the messages one of their addresses is party to (sender, a header
recipient, or an envelope recipient: Bcc and journal copies included); a reviewer only the
messages of the review items in their queues (``review.queues``); anyone else none. A
message outside someone's reach is "not found", in the same words as one that does not
exist, and the attempt is audited. Every search, count, view and download is audited.
``tag:`` (reviewers' tags) and ``hold:`` are resolved from the catalog when a query runs.
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
from mailvault.review.queues import in_queue, queue_message_ids
from mailvault.review.tags import resolve_tags
from mailvault.search.document import message_ids
from mailvault.search.query import And, IdSet, MatchAll, Node, Or, Party, mentions
from mailvault.search.query import parse as parse_query
from mailvault.store import audit, catalog
from mailvault.store.catalog import MessageRow as MessageRow  # re-exported for the faces
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

    @property
    def defects(self) -> list[str]:
        """What was irregular or not read: the defects recorded when the message was archived
        (attachment text skipped or cut is known only then: showing it parses without
        extracting) and those of this parse."""
        return [*self.row.defects, *(d for d in self.parsed.defects if d not in self.row.defects)]


def search(vault: Vault, who: Principal, text: str, *, limit: int = 50,
           offset: int = 0, order: str = "newest", with_facets: bool = False) -> SearchPage:
    """The messages ``who`` may see that match the query, in ``order`` (newest, oldest or
    largest first), with the facets of every match when asked for (audited once)."""
    asked = parse_query(text)
    total, ids, counts = vault.index.search_counted(
        _scoped(vault, who, asked), limit=max(limit, 0), offset=max(offset, 0), order=order,
        facets=FACET_VALUES if with_facets else 0, reach=isinstance(asked, MatchAll))
    facets = _facets(counts, total) if with_facets else None
    with vault.engine.begin() as conn:
        rows = catalog.messages_by_id(conn, ids)
        audit.record(conn, who.name, "search", {"query": text, "matches": total,
                                                "shown": len(rows), "offset": offset})
    return SearchPage(total, rows, offset, limit, order, facets)


def facets(vault: Vault, who: Principal, text: str) -> Facets:
    """The facets of the messages ``who`` may see that match the query (audited)."""
    asked = parse_query(text)
    total, _, counts = vault.index.search_counted(
        _scoped(vault, who, asked), limit=0, facets=FACET_VALUES,
        reach=isinstance(asked, MatchAll))
    counted = _facets(counts, total)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "facets", {"query": text, "matches": total})
    return counted


def _facets(counts: dict[str, list[tuple[str, int]]], total: int) -> Facets:
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
            found = {i: r for i, r in found.items() if _visible(vault, conn, who, i)}
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
    ``hold:`` and ``tag:`` resolved): for use cases that act on a query's matches (an
    export, a restore)."""
    return _scoped(vault, who, parse_query(text))


def _scoped(vault: Vault, who: Principal, node: Node) -> Node:
    """The query limited to what ``who`` may search; ``hold:`` resolved for those who may
    see holds, ``tag:`` for those who may see reviewers' tags (auditors and reviewers: a
    supervised user must not learn how their mail was tagged)."""
    if mentions(node, "hold"):
        if not allows(who, Permission.HOLDS):
            raise QueryError("hold: can only be searched by those who manage legal holds.")
        node = resolve_holds(vault, node)
    if mentions(node, "tag"):
        if not (allows(who, Permission.SEARCH_ALL) or allows(who, Permission.REVIEW)):
            raise QueryError("tag: can only be searched by auditors and reviewers.")
        node = resolve_tags(vault, node)
    if allows(who, Permission.SEARCH_ALL):
        return node
    reach: list[Node] = []
    if allows(who, Permission.OWN_MAIL):
        reach.append(Party(frozenset(who.addresses)))
    if allows(who, Permission.REVIEW):
        reach.append(IdSet(queue_message_ids(vault, who.name)))
    if not reach:
        require(who, Permission.OWN_MAIL)
    return And((node, reach[0] if len(reach) == 1 else Or(tuple(reach))))


def _reachable(vault: Vault, who: Principal, ref: str, everything: Permission,
               action: str) -> MessageRow:
    """The message ``ref`` names, if ``who`` may reach it: with ``everything`` any message,
    with own-mail access one they are party to, as a reviewer one in their queues.
    Otherwise "not found", audited."""
    if allows(who, everything):
        with vault.engine.connect() as conn:
            return catalog.resolve(conn, ref)
    if not (allows(who, Permission.OWN_MAIL) or allows(who, Permission.REVIEW)):
        require(who, Permission.OWN_MAIL)
    with vault.engine.begin() as conn:
        row = _visible_row(vault, conn, who, ref)
        if row is not None:
            return row
        audit.record(conn, who.name, "denied", {"action": action, "ref": ref[:_REF_CHARS]})
    where = "among your mail" if allows(who, Permission.OWN_MAIL) else "in your review queues"
    raise NotFoundError(f"there is no message {ref[:_REF_CHARS]!r} {where}.")


def _visible(vault: Vault, conn: Connection, who: Principal, message_id: int) -> bool:
    """Whether a principal without read-all access may see this message."""
    if allows(who, Permission.OWN_MAIL) and catalog.is_party(conn, message_id, who.addresses):
        return True
    return allows(who, Permission.REVIEW) and in_queue(vault, who.name, message_id)


def _visible_row(vault: Vault, conn: Connection, who: Principal,
                 ref: str) -> MessageRow | None:
    try:
        row = catalog.resolve(conn, ref)
    except NotFoundError:
        return None
    return row if _visible(vault, conn, who, row.id) else None
