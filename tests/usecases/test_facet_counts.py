"""The facet counts agree with a brute-force count over the documents: across several
segments, for messages with two sender domains and two folders, and for a domain that only
messages' second sender domains make frequent."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mailvault.search import query as q
from mailvault.search.document import IndexDoc
from mailvault.search.index import SearchIndex

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


def test_facet_counts_equal_a_brute_force_count(tmp_path: Path) -> None:
    docs = _documents()
    index = SearchIndex(tmp_path / "index")
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
