"""Which words of a text the item page marks for a lexicon term."""

from __future__ import annotations

from mailvault.review.highlight import marked
from mailvault.search.query import parse


def hits(text: str, *terms: str) -> list[str]:
    pieces = marked(text, [parse(t) for t in terms])
    assert "".join(p for p, _ in pieces) == text
    return [p for p, hit in pieces if hit]


def test_words_phrases_and_prefixes() -> None:
    text = "We GUARANTEE it; guaranteed, off  the\nbooks; the bookshop is off."
    assert hits(text, "guarantee") == ["GUARANTEE"]
    assert hits(text, "guarantee*") == ["GUARANTEE", "guaranteed"]
    assert hits(text, 'body:"off the books"') == ["off  the\nbooks"]
    assert hits(text, "book") == []
    assert hits(text, "subject:(wire OR guarantee) -bookshop") == ["GUARANTEE"]


def test_nothing_to_mark() -> None:
    assert hits("plain text", "absent") == []
    assert marked("", [parse("x")]) == []
    assert marked("<b>", []) == [("<b>", False)]
