"""The facet counts agree with a brute-force count over the documents: across several
segments, for messages with two sender domains and two folders, and for a domain that only
messages' second sender domains make frequent. Every test runs on both search backends
(Tantivy, PostgreSQL)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailvault.search import query as q
from mailvault.search.backend import SearchBackend
from mailvault.search.document import IndexDoc
from mailvault.search.index import SearchIndex
from mailvault.search.postgresql_index import PostgresIndex
from mailvault.store import database
from tests.postgres import SEARCH_BACKENDS, search_catalog

NewIndex = Callable[[], SearchBackend]

_DOMAINS = [f"d{n}.example" for n in range(12)]


def _documents() -> list[IndexDoc]:
    pick = random.Random(11)
    docs = []
    for n in range(1, 601):
        # Skewed so that the most frequent values are clearly apart.
        first = _DOMAINS[min(int(pick.expovariate(0.35)), len(_DOMAINS) - 1)]
        domains = [first, "second.example"] if n % 5 == 0 else [first]
        year = 1998 + min(int(pick.expovariate(0.5)), 9)
        docs.append(IndexDoc(
            id=n, date=int(datetime(year, 6, 1, tzinfo=UTC).timestamp()) if n % 50 else None,
            size=100 + n, tier=pick.choice(["active", "active", "open", "deep"]),
            from_domains=domains, folder=pick.sample(["INBOX", "Sent", "x/y"], k=1 + n % 2),
            has=["attachment"] if pick.random() < 0.3 else []))
    return docs


@pytest.fixture(params=SEARCH_BACKENDS)
def new_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewIndex]:
    """Makes an empty index of each search backend in turn (one per test)."""
    engines = []

    def make() -> SearchBackend:
        if request.param == "tantivy":
            return SearchIndex(tmp_path / "index")
        url, password_file = search_catalog(request, tmp_path)
        engine = database.open_engine(tmp_path / "unused.sqlite", url, str(password_file))
        engines.append(engine)
        return PostgresIndex(engine)

    yield make
    for engine in engines:
        engine.dispose()


def _brute_force(docs: list[IndexDoc]) -> dict[str, Counter[str]]:
    return {
        "year": Counter(str(datetime.fromtimestamp(d.date, UTC).year) for d in docs
                        if d.date is not None),
        "fromdomain": Counter(x for d in docs for x in set(d.from_domains)),
        "folderkey": Counter(x for d in docs for x in d.folder),
        "tier": Counter(d.tier for d in docs),
        "has": Counter(x for d in docs for x in d.has),
    }


def _top(counter: Counter[str], size: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


def test_facet_counts_equal_a_brute_force_count(new_index: NewIndex) -> None:
    docs = _documents()
    index = new_index()
    for start in range(0, len(docs), 150):  # four commits: four segments
        index.put(docs[start:start + 150], replace=False)
        index.commit(start + 150, 0)
    selections: list[tuple[q.Node, Callable[[IndexDoc], bool]]] = [
        (q.MatchAll(), lambda d: True),
        (q.Term("tier", "active"), lambda d: d.tier == "active"),
        (q.HasAttachment(), lambda d: "attachment" in d.has),
    ]
    for node, keep in selections:
        expected = _brute_force([d for d in docs if keep(d)])
        every = index.facet_counts(node, size=100)
        assert {name: dict(values) for name, values in every.items()} == {
            name: dict(values) for name, values in expected.items()}
        # The top few: "second.example" is only ever a second domain, yet among the top.
        top = index.facet_counts(node, size=3)
        assert top["fromdomain"] == _top(expected["fromdomain"], 3)
        assert top["year"] == _top(expected["year"], 3)
    assert "second.example" in dict(index.facet_counts(q.MatchAll(), size=3)["fromdomain"])
    index.close()


def _indexed(new_index: NewIndex, docs: list[IndexDoc]) -> SearchBackend:
    index = new_index()
    for start in range(0, len(docs), 150):  # four commits: four segments
        index.put(docs[start:start + 150], replace=False)
        index.commit(start + 150, 0)
    return index


def _ordered(docs: list[IndexDoc], order: str) -> list[int]:
    """Message ids in a results order by brute force: the order's column (an undated
    message's date is 0), then the id, both descending for newest and largest."""
    if order == "oldest":
        return [d.id for d in sorted(docs, key=lambda d: (d.date or 0, d.id))]
    column: Callable[[IndexDoc], int] = (lambda d: d.size) if order == "largest" else (
        lambda d: d.date or 0)
    return [d.id for d in sorted(docs, key=lambda d: (column(d), d.id), reverse=True)]


def test_one_pass_pages_equal_a_brute_force_order_and_count(new_index: NewIndex) -> None:
    """A results page (facets, total and the page of hits from one aggregation, or the
    hits sorted within a window when the query counts as broad) gives the total, the facet
    counts and the ids in the order a brute force over the documents gives, with or
    without facets, for every order and at every offset (deep pages included): across
    four segments, with many messages of the same date and size and undated ones, whose
    ties the id breaks."""
    docs = [replace(d, date=None if d.date is None else d.date + (d.id % 7) * 3600,
                    size=100 + d.id % 5) for d in _documents()]
    index = _indexed(new_index, docs)
    selections = (q.MatchAll(), q.Term("tier", "active"), q.HasAttachment(),
                  q.Not(q.Term("fromdomain", "d0.example")), q.Term("tier", "none"))
    # Tantivy sorts a page in one pass or within a window (broad_matches -1: every query
    # is broad): both ways. PostgreSQL has one way.
    broads = (index.broad_matches, -1) if isinstance(index, SearchIndex) else (None,)
    for node, broad in ((n, b) for b in broads for n in selections):
        if isinstance(index, SearchIndex) and broad is not None:
            index.broad_matches = broad
        matching = [d for d in docs if _matches(node, d)]
        expected = _brute_force(matching)
        for order in ("newest", "oldest", "largest"):
            every = _ordered(matching, order)
            for offset, limit in ((0, 50), (37, 20), (140, 50), (590, 50), (700, 5),
                                  (0, 1_000), (990, 20), (1_200, 10)):
                wanted = (len(matching), every[offset:offset + limit])
                assert index.search(node, limit, offset, order) == wanted, (node, order)
                total, ids, counts = index.search_counted(node, limit, offset, order,
                                                          facets=100)
                assert (total, ids) == wanted, (node, order, offset)
                assert {name: dict(values) for name, values in counts.items()} == {
                    name: dict(values) for name, values in expected.items()}
        assert index.search_counted(node, 0, facets=100)[:2] == (len(matching), [])
        assert index.count(node) == len(matching)
        assert sorted(index.ids(node, page=64)) == sorted(d.id for d in matching)
    index.close()


def _matches(node: q.Node, doc: IndexDoc) -> bool:
    if isinstance(node, q.MatchAll):
        return True
    if isinstance(node, q.HasAttachment):
        return "attachment" in doc.has
    if isinstance(node, q.Not):
        return not _matches(node.child, doc)
    assert isinstance(node, q.Term)
    return doc.tier == node.text if node.field == "tier" else node.text in doc.from_domains


def test_reach_counts_are_kept_until_the_index_changes(new_index: NewIndex) -> None:
    """A principal's whole reach (``reach=True``) is counted once per index generation:
    asked again, the counts are the kept ones; after a commit that adds, replaces or
    deletes documents they are counted again, and always equal a brute-force count."""
    docs = _documents()
    index = _indexed(new_index, docs[:450])

    def counted(node: q.Node, present: list[IndexDoc]) -> None:
        total, ids, counts = index.search_counted(node, 10, facets=100, reach=True)
        matching = [d for d in present if _matches(node, d)]
        assert total == len(matching)
        # The newest ten: ties (one date per year here) follow the index's order.
        date = {d.id: d.date or 0 for d in matching}
        assert [date[i] for i in ids] == sorted(date.values(), reverse=True)[:10]
        assert index.search_counted(node, 10, reach=True)[:2] == (total, ids)
        assert index.search_counted(node, 0, facets=100, reach=True) == (total, [], counts)
        assert {name: dict(values) for name, values in counts.items()} == {
            name: dict(values) for name, values in _brute_force(matching).items()}

    everything, active = q.MatchAll(), q.Term("tier", "active")
    for node in (everything, active):
        counted(node, docs[:450])
        counted(node, docs[:450])  # kept
    index.put(docs[450:], replace=False)  # not committed: not visible, counts still kept
    counted(everything, docs[:450])
    index.commit(600, 0)
    counted(everything, docs)
    counted(active, docs)
    moved = [replace(d, tier="deep") for d in docs[:40]]
    index.put(moved)
    index.delete([d.id for d in docs[100:130]])
    index.commit()
    present = moved + docs[40:100] + docs[130:]
    counted(everything, present)
    counted(active, present)
    index.close()


def test_pages_sorted_within_a_window_equal_a_brute_force_order(new_index: NewIndex) -> None:
    """A page of hits is sorted among the matches of the first weeks (or size ranges) that
    hold it, not among all: with dates over many weeks, messages on the very edges of a
    week and of a size range, ties across segments and undated messages, every page in
    every order, deep ones included, is the one a brute force gives."""
    week = 7 * 86_400
    edge = 1_000 * week  # a week's first second, as the spread counts weeks (from 1970)
    docs = []
    for n in range(1, 1_201):
        date = None if n % 97 == 0 else edge + (n % 40) * week - (n % 3)  # -1, 0 and -2 s
        size = (256, 383, 384, 385, 575, 576, 40_000, 9_000_000)[n % 8] + n % 2
        docs.append(IndexDoc(id=n, date=date, size=size, tier="active",
                             from_domains=[_DOMAINS[n % 3]], has=[]))
    index = _indexed(new_index, docs)
    if isinstance(index, SearchIndex):
        index.broad_matches = -1  # every query is broad here: sorted within a window
    for node in (q.MatchAll(), q.Term("fromdomain", "d1.example"),
                 q.Not(q.Term("fromdomain", "d2.example"))):
        matching = [d for d in docs if _matches(node, d)]
        for order in ("newest", "oldest", "largest"):
            every = _ordered(matching, order)
            for offset, limit in ((0, 1), (0, 50), (29, 31), (61, 7), (300, 50),
                                  (len(matching) - 3, 50), (len(matching), 10)):
                wanted = (len(matching), every[offset:offset + limit])
                assert index.search(node, limit, offset, order) == wanted, (node, order)
                assert index.search_counted(node, limit, offset, order,
                                            facets=5)[:2] == wanted, (node, order, offset)
    index.close()
