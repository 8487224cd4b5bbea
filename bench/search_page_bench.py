"""CPU of the index's part of a search page and of an API search (``search_counted`` with
and without facets) for the slow queries at 1,000,000 messages, as an auditor and as a user
(Phillip Allen's own-mail scope), without the use case around them. Fewest CPU ms of
--repeat calls: on a shared machine the fastest call is the one least disturbed.

    python bench/search_page_bench.py --vault V
    PYTHONPATH=/work/main python bench/search_page_bench.py --vault V   # another tree
    python bench/search_page_bench.py --vault V --by-phrase   # without the word runs

Opens the index only (it may rebuild an index of an older schema: use a copy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mailvault.search import query as q
from mailvault.search.index import SearchIndex

QUERIES = ("from:phillip.allen", "from:enron.com before:2000-06-01", "on:2001-05-14",
           "to:allen", "west*", "", 'body:"please call"')
USER = q.Party(frozenset({"phillip.allen@enron.com"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--by-phrase", action="store_true",
                        help="answer From/To/Cc phrases by positions, not by word runs")
    args = parser.parse_args()
    index = SearchIndex(args.vault / "index")
    if args.by_phrase:
        index.word_runs = False  # the same index, compiled as one without runs
    result: dict[str, float] = {}
    for text in QUERIES:
        for who, node in (("auditor", q.parse(text)), ("user", q.And((q.parse(text), USER)))):
            for request, facets in (("page", 20), ("api", 0)):
                times = []
                for _ in range(args.repeat):
                    started = time.process_time()
                    index.search_counted(node, 50, 0, "newest", facets=facets)
                    times.append(time.process_time() - started)
                result[f"{text} | {who} | {request}"] = round(min(times) * 1000, 1)
    index.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
