"""The query language: whatever a person types, it parses and compiles to an index query, or
it is refused with one QueryError sentence; never another exception. On both search backends
(Tantivy, and PostgreSQL, whose tsquery and SQL the words and values must never break)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailvault.errors import QueryError
from mailvault.search import query as q
from mailvault.search.backend import SearchBackend
from mailvault.search.index import SearchIndex
from mailvault.search.postgresql_index import PostgresIndex
from mailvault.store import database
from tests.fuzz.profile import fuzz
from tests.postgres import SEARCH_BACKENDS, search_catalog

# hold: reaches the index here as it is typed (the search use case replaces it with the held
# ids first): the index must refuse it with a QueryError, as the deep run found it did not.
FIELDS = ["from", "to", "cc", "bcc", "participant", "subject", "body", "attachment",
          "filename", "has", "after", "before", "on", "older", "newer", "larger", "smaller",
          "tier", "folder", "source", "tag", "hold", "msgid", "id", "nosuch", "FROM"]
PIECES = st.one_of(
    st.sampled_from(["(", ")", "-", "OR", "or", '"', " ", "*", ":", "\t", "\u00e9",
                     "attachment", "1", "99999999999999999999999", "1e5", "2021-02-30",
                     "2021-13-01", "0000-01-01", "9999-12-31", "10K", "1.5M", "-1", "..",
                     "\x00", "\ud800", "\U0001f600", "a*", "*a", "'", "\\"]),
    st.sampled_from(FIELDS).map(lambda f: f + ":"),
    st.text(max_size=8),
)
QUERIES = st.one_of(st.lists(PIECES, max_size=30).map("".join),
                    st.lists(PIECES, max_size=30).map(" ".join),
                    st.text(max_size=60))


@pytest.fixture(scope="module", params=SEARCH_BACKENDS)
def index(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[SearchBackend]:
    folder = Path(tmp_path_factory.mktemp("index"))
    if request.param == "tantivy":
        opened: SearchBackend = SearchIndex(folder)
        engine = None
    else:
        url, password_file = search_catalog(request, folder)
        engine = database.open_engine(folder / "unused.sqlite", url, str(password_file))
        opened = PostgresIndex(engine)
    try:
        yield opened
    finally:
        opened.close()
        if engine is not None:
            engine.dispose()


@fuzz(300, budget_s=2.0)
@given(text=QUERIES)
def test_a_query_parses_and_runs_or_is_one_query_error(index: SearchBackend, text: str) -> None:
    try:
        node = q.parse(text)
        index.search(node, limit=5)
    except QueryError as exc:
        message = str(exc)
        assert message and "\n" not in message and message.endswith(".")


@pytest.mark.parametrize("text", ["hold:x", "hold:(a b)", "-hold:x", "from:a OR hold:\"b c\""])
def test_hold_reaching_the_index_is_one_query_error(index: SearchBackend, text: str) -> None:
    with pytest.raises(QueryError, match="cannot answer 'hold:'"):
        index.search(q.parse(text), limit=5)
