"""The query language people already know from Gmail, parsed to a backend-neutral AST.

    from:alice subject:"quarterly report" after:2001-01-01 has:attachment -in:trash
    (budget OR forecast) filename:xls larger:1M word* party:bob@example.com

Terms side by side must all match; ``OR`` (upper case) between terms offers alternatives and
binds tighter than the implicit AND, as in Gmail; ``-`` negates; parentheses group. ``after:``
includes its day, ``before:`` excludes its day, ``on:`` is one day (all UTC). Sizes take K, M
and G suffixes. ``party:ADDR`` is exact (a whole address, any header or envelope role), where
``participant:`` is words in From/To/Cc/Bcc. An empty query matches every message.

The AST holds no backend types: the Tantivy compiler lives in index.py, and a SQL one can be
written beside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailvault.days import parse_day
from mailvault.errors import QueryError

TEXT_FIELDS = ("from", "to", "cc", "bcc", "subject", "body", "attachment", "filename",
               "folder", "source")
KEYWORD_FIELDS = ("tier", "tag", "hold", "msgid", "fromdomain")
PARTICIPANT_FIELDS = ("from", "to", "cc", "bcc")
ALIASES = {"in": "folder", "label": "tag", "rfc822msgid": "msgid", "file": "filename"}
# Parentheses and negations nest at most this deep: the parser and the backends walk the
# tree recursively, and no person writes a query deeper than this.
MAX_NESTING = 64
# The largest size a query may name (sizes are stored as signed 64-bit integers).
MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Term:
    """Words that must occur in a field (``field`` None: any of the default fields).

    ``phrase``: the words in this order, adjacent. ``prefix``: the last word is a prefix.
    """

    field: str | None
    text: str
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class DateRange:
    """Message date from ``start`` (inclusive) to ``end`` (exclusive); either may be open."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class SizeRange:
    """Raw size in bytes, strictly above ``above`` and strictly below ``below``."""

    above: int | None
    below: int | None


@dataclass(frozen=True)
class HasAttachment:
    """The message has at least one attachment."""


@dataclass(frozen=True)
class MatchAll:
    """Every message."""


@dataclass(frozen=True)
class IdSet:
    """Exactly these messages (what ``hold:NAME`` becomes once the hold is looked up)."""

    ids: frozenset[int]


@dataclass(frozen=True)
class Party:
    """Messages one of these (lower-case) addresses is party to: a header address (From,
    Sender, To, Cc, Bcc, Reply-To) or an envelope sender or recipient of any arrival. The
    same rule as the catalog's address rows, so a user's own mail is one index query."""

    addresses: frozenset[str]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | DateRange | SizeRange | HasAttachment | MatchAll | IdSet | Party | Not | And | Or

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\()|(?P<rparen>\))|
        (?P<neg>-)?(?:(?P<field>[A-Za-z_]+):)?
        (?:"(?P<quoted>[^"]*)"?|(?P<word>[^\s()"]+)|(?P<group>\())
    )""",
    re.X,
)


def parse(text: str) -> Node:
    """Parse a query; QueryError with a sentence when it cannot be understood."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 reach here from a command line as lone surrogates.
        raise QueryError("the query is not UTF-8 text.") from None
    tokens = _tokenize(text)
    if not tokens:
        return MatchAll()
    parser = _Parser(tokens)
    node = parser.expression()
    if parser.pos < len(tokens):
        raise QueryError(f"unexpected {tokens[parser.pos][1]!r} in the query.")
    return node


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"the query cannot be read from {text[pos:]!r} on.")
        pos = match.end()
        if match.group("lparen") is not None:
            tokens.append(("(", "("))
        elif match.group("rparen") is not None:
            tokens.append((")", ")"))
        else:
            if match.group("neg"):
                tokens.append(("-", "-"))
            field = match.group("field")
            if field:
                tokens.append(("field", field.lower()))
            if match.group("group") is not None:
                tokens.append(("(", "("))
            elif match.group("quoted") is not None:
                tokens.append(("phrase", match.group("quoted")))
            else:
                word = match.group("word")
                tokens.append(("or", word) if word == "OR" and not field else ("word", word))
    return tokens


class _Parser:
    """expression := and_expr ; and_expr := or_expr+ ; or_expr := unary (OR unary)*."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expression(self) -> Node:
        items = []
        while self.peek() not in (None, ")"):
            items.append(self.alternatives())
        if not items:
            return MatchAll()
        return items[0] if len(items) == 1 else And(tuple(items))

    def alternatives(self) -> Node:
        items = [self.unary()]
        while self.peek() == "or":
            self.take()
            if self.peek() in (None, ")"):
                raise QueryError("OR must stand between two terms.")
            items.append(self.unary())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def unary(self) -> Node:
        kind, value = self.take()
        if kind in ("-", "("):
            self._deeper()
        if kind == "-":
            node: Node = Not(self.unary())
            self.depth -= 1
            return node
        if kind == "(":
            node = self.expression()
            if self.peek() != ")":
                raise QueryError("a parenthesis is not closed.")
            self.take()
            self.depth -= 1
            return node
        if kind == "field":
            return self.fielded(value)
        if kind in ("word", "phrase"):
            return _term(None, value, kind == "phrase")
        if kind == "or":
            raise QueryError("OR must stand between two terms.")
        raise QueryError(f"unexpected {value!r} in the query.")

    def fielded(self, name: str) -> Node:
        name = ALIASES.get(name, name)
        if self.peek() == "(":
            self.take()
            self._deeper()
            inner = self.expression()
            if self.peek() != ")":
                raise QueryError("a parenthesis is not closed.")
            self.take()
            self.depth -= 1
            return _with_field(inner, name)
        if self.peek() not in ("word", "phrase"):
            raise QueryError(f"{name}: needs a value.")
        kind, value = self.take()
        return operator(name, value, kind == "phrase")

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise QueryError(f"the query nests parentheses or negations more than "
                             f"{MAX_NESTING} deep.")


def operator(name: str, value: str, quoted: bool = False) -> Node:
    """One ``name:value`` term as a node."""
    if name in ("after", "before", "on", "older", "newer"):
        day = parse_day(value)
        if name in ("after", "newer"):
            return DateRange(day, None)
        if name in ("before", "older"):
            return DateRange(None, day)
        return DateRange(day, day + timedelta(days=1))
    if name == "larger":
        return SizeRange(parse_size(value), None)
    if name == "smaller":
        return SizeRange(None, parse_size(value))
    if name == "has":
        if value.lower() in ("attachment", "attachments"):
            return HasAttachment()
        raise QueryError(f"has:{value} is not known (has:attachment is).")
    if name == "participant":
        return Or(tuple(_term(f, value, quoted) for f in PARTICIPANT_FIELDS))
    if name == "party":
        return party(value)
    if name in TEXT_FIELDS or name in KEYWORD_FIELDS:
        return _term(name, value, quoted)
    raise QueryError(f"{name}: is not a search operator.")


def party(address: str) -> Party:
    """``party:ADDR``: the messages a whole address is party to (header or envelope), the one
    definition own-mail access and subject access (``person report``) use as well."""
    address = address.strip().lower()
    local, _at, domain = address.partition("@")
    if not local or not domain or any(c.isspace() for c in address):
        raise QueryError(f"party: needs a whole mail address (name@domain), not {address!r}.")
    return Party(frozenset({address}))


def _term(field: str | None, value: str, quoted: bool) -> Term:
    prefix = not quoted and value.endswith("*") and len(value) > 1
    text = value.rstrip("*") if prefix else value
    return Term(field, text, phrase=quoted, prefix=prefix)


def _with_field(node: Node, name: str) -> Node:
    """Apply ``name:`` to every bare term of a group: ``subject:(a OR b)``."""
    if isinstance(node, Term) and node.field is None:
        return operator(name, node.text + ("*" if node.prefix else ""), node.phrase)
    if isinstance(node, Not):
        return Not(_with_field(node.child, name))
    if isinstance(node, And):
        return And(tuple(_with_field(c, name) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(_with_field(c, name) for c in node.children))
    return node


def mentions(node: Node, field: str) -> bool:
    """Whether the query uses the operator ``field:`` anywhere (negated terms too)."""
    if isinstance(node, Term):
        return node.field == field
    if isinstance(node, Not):
        return mentions(node.child, field)
    if isinstance(node, And | Or):
        return any(mentions(child, field) for child in node.children)
    return False


def substitute(node: Node, field: str, replace: Callable[[Term], Node]) -> Node:
    """The query with every ``field:`` term replaced by what ``replace`` makes of it (how
    ``hold:`` and ``tag:`` become the messages they name when a query runs)."""
    if isinstance(node, Term) and node.field == field:
        return replace(node)
    if isinstance(node, Not):
        return Not(substitute(node.child, field, replace))
    if isinstance(node, And):
        return And(tuple(substitute(c, field, replace) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(substitute(c, field, replace) for c in node.children))
    return node


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)b?$", re.I)


def parse_size(value: str) -> int:
    """A size like 500, 10K, 2.5M or 1G, in bytes."""
    match = _SIZE.match(value.strip())
    if not match:
        raise QueryError(f"{value!r} is not a size (use a number with K, M or G).")
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    size = float(match.group(1)) * factor
    if size > MAX_SIZE:
        shown = value if len(value) <= 24 else value[:24] + "..."
        raise QueryError(f"{shown!r} is larger than any message can be.")
    return int(size)
