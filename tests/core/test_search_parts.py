"""A page searched in parts, one a thread (``SearchIndex._top``), is exactly the page the
whole query gives: the same total, the same ids in the same order, on every page, both
orders, whatever the number of parts; a count in parts is the whole count; and it splits
only where it should: never beside another search."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mailvault.search import query as q
from mailvault.search.document import IndexDoc
from mailvault.search.index import SearchIndex

COUNT = 900
QUERIES = ["", "from:alpha", "from:beta subject:report", "before:2001-01-01",
           "after:2000-06-01 -from:gamma", "subject:nothing-matches", "body:word3"]


def documents() -> list[IndexDoc]:
    pick = random.Random(11)
    senders = ["alpha@example.org", "beta@example.org", "gamma@example.com"]
    return [IndexDoc(
        id=n, size=pick.randrange(100, 50_000), tier="active",
        # Many messages share a date (the order key breaks ties by id), some have none.
        date=None if n % 97 == 0 else 946_684_800 + pick.randrange(40) * 86_400 * 20,
        from_=[pick.choice(senders)], subject=pick.choice(["report", "lunch", "report q3"]),
        body=f"word{n % 7} text") for n in range(1, COUNT + 1)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    index = SearchIndex(tmp_path / "index", threads=1)
    index.put(documents(), replace=False)
    index.commit(COUNT, 0)
    index.close()
    return tmp_path / "index"


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_parts_give_exactly_the_page_of_the_whole(
        folder: Path, threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = SearchIndex(folder, threads=1)
    monkeypatch.setattr("mailvault.search.index.SPLIT_DOCS", 1)
    monkeypatch.setattr("mailvault.search.index.SPLIT_MATCHES", 1)
    split = SearchIndex(folder, threads=threads)
    assert split.threads == threads
    pages = [(50, 0), (50, 100), (7, 445), (50, COUNT - 20), (50, COUNT + 5), (0, 0)]
    for text in QUERIES:
        node = q.parse(text)
        for order in ("newest", "oldest"):
            for limit, offset in pages:
                expected = whole.search(node, limit, offset, order)
                assert split.search(node, limit, offset, order) == expected, (text, order)
            # The page of a count already known (the search page's facets gave it).
            expected = whole.search_counted(node, 50, 0, order, facets=3)
            assert split.search_counted(node, 50, 0, order, facets=3) == expected
        assert split.count(node) == whole.count(node), text
    assert split._pool is not None  # the parts did run on the threads
    assert whole._pool is None
    split.close()
    whole.close()


def test_small_indexes_narrow_queries_deep_pages_and_other_orders_are_not_split(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = SearchIndex(folder, threads=2)
    searcher = index._searcher()
    compiled = index.compile(q.parse("from:alpha"))
    assert len(index._parts(searcher, compiled, 50)) == 1  # 900 documents: under SPLIT_DOCS
    monkeypatch.setattr("mailvault.search.index.SPLIT_DOCS", 1)
    assert len(index._parts(searcher, compiled, 50)) == 2
    assert len(index._parts(searcher, compiled, 5_000)) == 1  # a deep page
    index.search(q.parse("from:alpha"), 50, 0, "largest")  # ties by size: never split
    index.search(q.parse("from:alpha"), 50, 0, "newest")  # known to match under 50,000
    assert index._pool is None
    monkeypatch.setattr("mailvault.search.index.SPLIT_MATCHES", 1)
    index.search(q.parse("from:alpha"), 50, 0, "newest")
    assert index._pool is not None
    assert len(SearchIndex(folder, threads=1)._parts(searcher, compiled, 50)) == 1
    index.close()


def test_a_search_beside_another_is_not_split(folder: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mailvault.search.index.SPLIT_DOCS", 1)
    monkeypatch.setattr("mailvault.search.index.SPLIT_MATCHES", 1)
    index = SearchIndex(folder, threads=2)
    whole = SearchIndex(folder, threads=1)
    node = q.parse("from:alpha")
    with index._searching():  # another thread's search, still running
        assert index.search(node, 50) == whole.search(node, 50)
        assert index.count(node) == whole.count(node)
        assert index._pool is None  # no part ran on the threads
    assert index._searches == 0
    assert index.search(node, 50) == whole.search(node, 50)
    assert index._pool is not None  # alone again, it splits
    index.close()
    whole.close()
