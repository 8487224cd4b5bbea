"""CPU of the facet counts on an existing vault's index, without the use case around them:
each facet column alone and the five facets together (``SearchIndex.facet_counts``), over
all messages and over a broad query. Minimum of --repeat calls: on a shared machine the
fastest call is the one least disturbed by other processes.

    python bench/facet_bench.py --vault V
    python bench/facet_bench.py --vault V --columns year fromdomain folderkey tier has

Opens the index only (it may rebuild an index of an older schema: use a copy).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailvault.search.index import SearchIndex
from mailvault.search.query import parse

COLUMNS = ("year", "fromdomain", "folderkey", "tier", "has")
QUERIES = ("", "from:phillip.allen", "from:enron.com before:2000-06-01")


def fastest_ms(call: Callable[[], Any], repeat: int) -> float:
    """The fewest CPU milliseconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return round(min(times) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--columns", nargs="+", default=list(COLUMNS),
                        help="the fast fields to count one at a time (this tree's schema)")
    args = parser.parse_args()
    index = SearchIndex(args.vault / "index")
    searcher = index._searcher()
    everything = index.compile(parse(""))
    result: dict[str, Any] = {"documents": index.doc_count(), "column_ms": {
        column: fastest_ms(lambda c=column: searcher.aggregate(  # type: ignore[misc]
            everything, {c: {"terms": {"field": c, "size": 20}}}), args.repeat)
        for column in args.columns}}
    result["facet_counts_ms"] = {
        text: fastest_ms(lambda t=text: index.facet_counts(parse(t)),  # type: ignore[misc]
                         args.repeat)
        for text in QUERIES}
    index.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
