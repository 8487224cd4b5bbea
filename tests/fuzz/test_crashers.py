"""Every crasher the fuzz tests found, kept as its input file in tests/fixtures/fuzz/ (the
file's name says what it is): each must now get its one clear answer.

- query-*: a query with bytes that are not UTF-8 (as a command line passes them), nesting
  past what the parser recurses through, or a size past any integer: one QueryError each
  (they raised UnicodeEncodeError, RecursionError and OverflowError).
- header-*.eml: encoded words in charsets that are no text encoding (base64, quopri), that
  fail their own way (punycode), or that decode_header refuses and the glued-word retry
  retried for ever: each header decodes to text (they raised LookupError, UnicodeError,
  HeaderParseError or RecursionError, out of the page that shows a message's headers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailvault.charsets import header_text
from mailvault.errors import QueryError
from mailvault.message import display_headers, parse
from mailvault.search import query as q

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"


def fixtures(pattern: str) -> list[Path]:
    found = sorted(FIXTURES.glob(pattern))
    assert found, pattern
    return found


@pytest.mark.parametrize("path", fixtures("query-*"), ids=lambda p: p.name)
def test_a_query_crasher_is_one_query_error(path: Path) -> None:
    # A command line's bytes reach Python as text with surrogate escapes.
    text = path.read_bytes().decode("utf-8", "surrogateescape").strip()
    with pytest.raises(QueryError) as caught:
        q.parse(text)
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


@pytest.mark.parametrize("path", fixtures("header-*.eml"), ids=lambda p: p.name)
def test_a_header_crasher_decodes_to_text(path: Path) -> None:
    raw = path.read_bytes()
    shown = display_headers(raw)
    assert [name for name, _value in shown] == [
        line.split(b":")[0].decode() for line in raw.split(b"\n\n")[0].splitlines()]
    for _name, value in shown:
        value.encode("utf-8")
    parsed = parse(raw)
    assert not [d for d in parsed.defects if d.startswith("parse stopped")]
    assert header_text(parsed.subject) == parsed.subject
