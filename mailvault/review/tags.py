"""Tags reviewers put on messages (``review_tags``), and ``tag:`` in the query language.

A tag is a catalog row, not an index field: ``tag:NAME`` is resolved to the messages that
carry it when the query runs (as ``hold:`` is), so a tag is searchable the moment it is
added, without a reindex. ``tag:wo*`` matches tags that start with ``wo``.
"""

from __future__ import annotations

import re

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError as DuplicateRow

from mailvault.errors import InputError, NotFoundError
from mailvault.search.query import IdSet, Node, substitute
from mailvault.store import audit, schema
from mailvault.store.catalog import now
from mailvault.vault import Vault

_TAG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def checked_tag(text: str) -> str:
    """A tag as stored: lower case, 1-64 of a-z 0-9 . _ - (starting with a letter or digit)."""
    tag = text.strip().lower()
    if not _TAG.match(tag):
        raise InputError("a tag is 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a "
                         "letter or digit.")
    return tag


def add_tag(vault: Vault, message_id: int, text: str, actor: str, item_id: int) -> str:
    """Tag a message (audited ``review-tag``); a tag it has already is refused."""
    tag = checked_tag(text)
    try:
        with vault.engine.begin() as conn:
            conn.execute(insert(schema.review_tags).values(
                message_id=message_id, tag=tag, added_by=actor, added_at=now()))
            audit.record(conn, actor, "review-tag", {"message": message_id, "item": item_id,
                                                     "tag": tag})
    except DuplicateRow:
        raise InputError(f"message {message_id} is tagged {tag!r} already.") from None
    return tag


def remove_tag(vault: Vault, message_id: int, text: str, actor: str, item_id: int) -> None:
    """Take a tag off a message (audited ``review-untag``)."""
    tag = checked_tag(text)
    t = schema.review_tags
    with vault.engine.begin() as conn:
        gone = conn.execute(delete(t).where(t.c.message_id == message_id, t.c.tag == tag))
        if not gone.rowcount:
            raise NotFoundError(f"message {message_id} has no tag {tag!r}.")
        audit.record(conn, actor, "review-untag", {"message": message_id, "item": item_id,
                                                   "tag": tag})


def tags_of(vault: Vault, message_id: int) -> list[str]:
    """A message's tags, sorted."""
    t = schema.review_tags
    with vault.engine.connect() as conn:
        return sorted(conn.execute(select(t.c.tag).where(t.c.message_id == message_id))
                      .scalars())


def tagged(vault: Vault, tag: str, prefix: bool = False) -> frozenset[int]:
    """The messages carrying ``tag`` (or a tag starting with it)."""
    t = schema.review_tags
    value = tag.strip().lower()
    where = t.c.tag.startswith(value, autoescape=True) if prefix else t.c.tag == value
    with vault.engine.connect() as conn:
        return frozenset(conn.execute(select(t.c.message_id).distinct().where(where))
                         .scalars())


def resolve_tags(vault: Vault, node: Node) -> Node:
    """The query with each ``tag:NAME`` replaced by exactly the messages tagged so now."""
    return substitute(node, "tag", lambda term: IdSet(tagged(vault, term.text, term.prefix)))
