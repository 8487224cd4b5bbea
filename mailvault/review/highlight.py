"""Where the lexicon terms that queued an item occur in a text, for the reviewer to see:
the words and phrases of each term (negated parts left out), matched case-insensitively as
whole words (a ``word*`` term by its prefix), with any run of spaces in a phrase. The result
is plain text pieces; the page escapes each (nothing here is markup)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailvault.search.query import And, Node, Not, Or, Term

_WORD = r"[^\W_]"


def words_of(node: Node) -> list[tuple[str, bool]]:
    """The (text, is a prefix) of every term a query requires or offers."""
    if isinstance(node, Term):
        return [(node.text, node.prefix)] if node.text.strip() else []
    if isinstance(node, And | Or):
        return [w for child in node.children for w in words_of(child)]
    if isinstance(node, Not):
        return []
    return []


def pattern(nodes: Iterable[Node]) -> re.Pattern[str] | None:
    """One pattern for every word and phrase of these queries (None: nothing to mark)."""
    alternatives = []
    for text, prefix in {w for node in nodes for w in words_of(node)}:
        pieces = re.findall(rf"{_WORD}+", text)
        if not pieces:
            continue
        body = r"\W+".join(re.escape(p) for p in pieces)
        alternatives.append(rf"(?<!{_WORD}){body}" + (rf"{_WORD}*" if prefix else
                                                       rf"(?!{_WORD})"))
    if not alternatives:
        return None
    # Longest first, so a phrase wins over a word it starts with.
    alternatives.sort(key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def marked(text: str, nodes: Iterable[Node]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, is a hit) pieces, in order; joined they give ``text``."""
    found = pattern(nodes)
    if found is None or not text:
        return [(text, False)] if text else []
    pieces: list[tuple[str, bool]] = []
    at = 0
    for match in found.finditer(text):
        if match.start() > at:
            pieces.append((text[at:match.start()], False))
        pieces.append((match.group(0), True))
        at = match.end()
    if at < len(text):
        pieces.append((text[at:], False))
    return pieces
