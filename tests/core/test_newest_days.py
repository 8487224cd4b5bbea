"""A page newest first whose total is known (the search page's facets, a principal's kept
reach counts) comes from the newest days when they hold it (``SearchIndex._newest_page``):
every page is the page of the whole search, for queries whose matches are everywhere, only
old, or few; after deletions and after new mail; and the days are used where they can be."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from mailvault.search import query as q
from mailvault.search.document import IndexDoc
from mailvault.search.index import SearchIndex, _ends_before

COUNT = 1_200
DAY = 86_400
QUERIES = ["", "from:alpha", "from:beta subject:report", "before:2000-03-01",
           "after:2000-06-01 -from:gamma", "body:word3", "subject:rare"]
PAGES = [(50, 0), (20, 40), (7, 300), (50, COUNT - 10)]


def documents(first_id: int, count: int, start: int) -> list[IndexDoc]:
    pick = random.Random(first_id)
    senders = ["alpha@example.org", "beta@example.org", "gamma@example.com"]
    return [IndexDoc(
        id=n, size=pick.randrange(100, 50_000), tier="active",
        # Several messages a day, some undated; ids not in date order.
        date=None if n % 89 == 0 else start + pick.randrange(300) * DAY + pick.randrange(DAY),
        from_=[pick.choice(senders)],
        subject="rare" if n % 150 == 0 else pick.choice(["report", "lunch", "report q3"]),
        body=f"word{n % 7} text") for n in range(first_id, first_id + count)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    index = SearchIndex(tmp_path / "index", threads=1)
    index.put(documents(1, COUNT, 946_684_800), replace=False)
    index.commit(COUNT, 0)
    index.close()
    return tmp_path / "index"


def pages(index: SearchIndex) -> list[tuple[int, list[int], object]]:
    """Every query's pages with their total known: by the facets and by the kept reach."""
    found = []
    for text in QUERIES:
        node = q.parse(text)
        for limit, offset in PAGES:
            found.append(index.search_counted(node, limit, offset, "newest", facets=3))
            found.append(index.search_counted(node, limit, offset, "newest", facets=3,
                                              reach=True))
    return found


def test_pages_from_the_newest_days_are_the_whole_searchs(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two folders: each index writes its own below.
    whole = SearchIndex(shutil.copytree(folder, folder.parent / "whole"), threads=1)
    expected = pages(whole)
    assert whole._newest is None  # a small index: never by days
    monkeypatch.setattr("mailvault.search.index.SPLIT_DOCS", 1)
    monkeypatch.setattr("mailvault.search.index.NEWEST_KEPT", 1_100)
    monkeypatch.setattr("mailvault.search.index.NEWEST_SPARE", 2)
    newest = SearchIndex(folder, threads=1)
    used = []
    real = newest._newest_page

    def counted(*args: object) -> list[int] | None:
        answer = real(*args)  # type: ignore[arg-type]
        used.append(answer is not None)
        return answer

    monkeypatch.setattr(newest, "_newest_page", counted)
    assert pages(newest) == expected
    # The broad queries' first pages came from the days; the old and the rare did not.
    assert used.count(True) >= 10 and used.count(False) >= 10

    # Mail deleted from the newest days, then new mail: still the whole search's pages.
    gone = [int(i) for i in newest.search(q.parse(""), 300)[1][::2]]
    for index in (whole, newest):
        index.delete(gone)
        index.commit(COUNT, 1)
    assert pages(newest) == pages(whole)
    for index in (whole, newest):
        index.put(documents(COUNT + 1, 300, 946_684_800 + 200 * DAY), replace=False)
        index.commit(COUNT + 300, 2)
    assert pages(newest) == pages(whole)
    whole.close()
    newest.close()


def test_a_range_ending_before_the_days_is_not_searched_there() -> None:
    march = 951_868_800  # 2000-03-01
    assert _ends_before(q.parse("before:2000-03-01"), march)
    assert _ends_before(q.parse("from:alpha on:2000-02-29"), march)
    assert not _ends_before(q.parse("from:alpha before:2000-03-02"), march)
    assert not _ends_before(q.parse("after:2000-01-01"), march)
    assert not _ends_before(q.parse("before:2000-03-01 OR from:alpha"), march)
