"""Search latency (p50/p95) of 20 realistic queries, on a vault or on a synthetic index.

    python bench/search_bench.py --vault /path/to/vault           # after import_bench.py
    python bench/search_bench.py --vault /path/to/vault --threads 1   # never split a search
    python bench/search_bench.py --synthetic 1000000              # index-only, 1M documents
    python bench/search_bench.py --synthetic 100000 --postgresql URL --password-file F
                                             # the same on the PostgreSQL search backend,
                                             # in URL's (empty) database or schema

With --vault, each query runs as the product runs it for a results page: parse, Tantivy
search (newest first, 50 hits), catalog rows for the hits. With --synthetic, documents are
built from generated messages by the product's own indexing code and multiplied (new id,
new date, a distinct word each) to the requested count, then queried the same way minus the
catalog step.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_corpus import seeds, vary

from mailvault.message import parse
from mailvault.search.backend import SearchBackend
from mailvault.search.document import message_document
from mailvault.search.index import SearchIndex
from mailvault.search.postgresql_index import PostgresIndex
from mailvault.search.query import parse as parse_query
from mailvault.store import catalog, database
from mailvault.vault import Vault

QUERIES = [
    "from:phillip.allen",
    'subject:"gas" after:2001-01-01',
    '"natural gas"',
    "west*",
    "has:attachment",
    "participant:john.arnold@enron.com",
    "larger:20K",
    "from:enron.com before:2000-06-01",
    "gen0012345",
    "-from:enron.com subject:meeting",
    "(budget OR forecast)",
    'body:"please call"',
    "attachment:invoice",
    "on:2001-05-14",
    "to:allen",
    "cc:enron.com subject:re",
    '"conference call" after:2000-01-01 before:2001-01-01',
    "filename:pdf",
    "smaller:2K price",
    "",
]


def timed(function: object, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(samples: dict[str, list[float]], documents: int) -> None:
    every = [s for values in samples.values() for s in values]
    every.sort()
    p95 = every[int(len(every) * 0.95) - 1]
    print(json.dumps({"documents": documents, "queries": len(samples),
                      "p50_ms": round(statistics.median(every), 2), "p95_ms": round(p95, 2),
                      "max_ms": round(every[-1], 2)}))
    for query, values in samples.items():
        print(f"  {statistics.median(values):8.2f} ms  {query or '(empty: all)'}")


def bench_vault(path: Path, repeat: int, threads: int | None) -> None:
    vault = Vault.open(path)
    if threads is not None:
        vault.index.threads = threads
    samples: dict[str, list[float]] = {}
    for text in QUERIES:
        def one(text: str = text) -> None:
            _, ids = vault.index.search(parse_query(text), limit=50)
            with vault.engine.connect() as conn:
                catalog.messages_by_id(conn, ids)
        one()
        samples[text] = timed(one, repeat)
    report(samples, vault.index.doc_count())
    vault.close()


def bench_synthetic(count: int, repeat: int, folder: Path,
                    postgresql: tuple[str, str] | None = None) -> None:
    rng = random.Random(7)
    pool = seeds(Path(__file__).resolve().parents[2] / "shared" / "corpus")
    base_docs = [message_document(parse(vary(pool[i % len(pool)], i, rng)), 4000, "active")
                 for i in range(min(count, 20_000))]
    index: SearchBackend
    if postgresql is None:
        index = SearchIndex(folder, heap_mb=512)
    else:
        index = PostgresIndex(database.open_engine(folder / "unused.sqlite", *postgresql))
    started = time.perf_counter()
    batch = []
    for number in range(count):
        doc = base_docs[number % len(base_docs)]
        batch.append(replace(doc, id=number + 1,
                             date=(doc.date or 0) + rng.randrange(-86400 * 90, 86400 * 90),
                             subject=f"{doc.subject} syn{number:07d}"))
        if len(batch) == 10_000:
            index.put(batch, replace=False)
            batch = []
    index.put(batch, replace=False)
    index.commit()
    loaded = time.perf_counter()
    # What a heal does after writing (PostgreSQL: ANALYZE of the partitions filled).
    index.refresh_statistics()
    index.close()
    print(f"indexed {count} documents in {loaded - started:.1f} s, statistics in "
          f"{time.perf_counter() - loaded:.1f} s, {index.size_bytes() / 1048576:.0f} MB")
    samples = {}
    for text in QUERIES:
        node = parse_query(text)
        index.search(node, limit=50)
        samples[text] = timed(lambda node=node: index.search(node, limit=50), repeat)
    report(samples, index.doc_count())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path)
    parser.add_argument("--synthetic", type=int)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgresql", default="", help="with --synthetic: the catalog URL "
                        "of an empty database or schema for the PostgreSQL backend")
    parser.add_argument("--password-file", default="")
    parser.add_argument("--threads", type=int, help="with --vault: the threads one search "
                        "may use (the vault's [search] query_threads if not given)")
    args = parser.parse_args()
    if args.vault:
        bench_vault(args.vault, args.repeat, args.threads)
    elif args.synthetic:
        with tempfile.TemporaryDirectory(prefix="mailvault-search-") as folder:
            bench_synthetic(args.synthetic, args.repeat, Path(folder) / "index",
                            (args.postgresql, args.password_file) if args.postgresql else None)
    else:
        parser.error("give --vault or --synthetic")


if __name__ == "__main__":
    main()
