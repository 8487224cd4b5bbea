"""The search page's builder and facet links: form fields and facet values turned into terms
of the query language (quoted where needed), so every search the page makes is a query a
person can read, edit and save."""

from __future__ import annotations

from collections.abc import Mapping

BUILDER_FIELDS = ("from", "to", "participant", "after", "before", "folder", "tier")


def quoted(value: str) -> str:
    """A value as one query term: bare if it is one plain word, else in double quotes
    (a double quote inside cannot be written, so it becomes a space)."""
    value = " ".join(value.replace('"', " ").split())
    if value and all(c not in value for c in ' ()"') and not value.startswith("-"):
        return value
    return f'"{value}"'


def compose(fields: Mapping[str, str], has_attachment: bool, text: str = "") -> str:
    """The query the builder's fields describe, after any free text."""
    terms = [text.strip()] if text.strip() else []
    for name in BUILDER_FIELDS:
        value = fields.get(name, "").strip()
        if value:
            terms.append(f"{name}:{quoted(value)}")
    if has_attachment:
        terms.append("has:attachment")
    return " ".join(terms)


def refine(query: str, term: str) -> str:
    """The query narrowed by one more term (nothing added when it is there already)."""
    query = query.strip()
    if term in query.split():
        return query
    return f"{query} {term}".strip()


def facet_term(facet: str, value: str) -> str:
    """The term a facet value adds to the query."""
    if facet == "year":
        year = int(value)
        return f"after:{year:04d}-01-01 before:{year + 1:04d}-01-01"
    if facet == "sender_domain":
        return f"fromdomain:{quoted(value)}"
    if facet == "folder":
        return f"folder:{quoted(value)}"
    if facet == "tier":
        return f"tier:{quoted(value)}"
    if facet == "attachment":
        return "has:attachment" if value == "with" else "-has:attachment"
    raise ValueError(f"no facet {facet!r}")
