"""What a search backend is: the one interface the query AST compiles to, and what it records.

Two backends implement it: ``index.SearchIndex`` (Tantivy, a folder in the vault: the
embedded default) and ``postgresql_index.PostgresIndex`` (tables in a PostgreSQL catalog's
database, ``[search] backend = "postgresql"``). Use cases, healing and the pipeline hold a
``SearchBackend`` and never know which: each backend compiles ``query.Node`` itself and
must answer every query with the same messages in the same order (message id breaking
ties), which the query-language tests check on both.

Writes follow one rule on both: ``put`` and ``delete`` are not visible until ``commit``,
which also records what the backend holds (the ``IndexMarker``: the watermark and reindex
generation healing trusts). A write that fails loses what was not committed, counts one
more lost writer (``lost_writers``) and raises StoreError.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailvault.search import query as q
from mailvault.search.document import IndexDoc

# The facets ``search_counted`` counts, each a list of (value, count), most frequent first
# (ties by value): year, sender domain, folder, tier, and "has" (attachment).
FacetCounts = dict[str, list[tuple[str, int]]]


@dataclass(frozen=True)
class IndexMarker:
    """What the backend holds, recorded with each commit.

    ``watermark``: every catalog message with an id up to it has a committed document.
    ``generation``: the last entry of the catalog's reindex log (new arrivals, tier moves,
    dispositions) that the documents reflect. The catalog keeps the watermark as well; a
    backend whose marker is behind it, or behind the log's pruned floor, is an older copy
    (an index folder put back).
    """

    watermark: int
    generation: int


class SearchBackend(Protocol):
    """A full-text index of the archive's messages, fed ``IndexDoc`` records and asked
    ``query.Node`` questions."""

    # Writers that failed and were replaced: documents added before were lost.
    lost_writers: int

    @property
    def location(self) -> str:
        """Where the index is (a folder, or the catalog's database): with the node's name,
        it names the index's cursor over the reindex log."""
        ...

    @property
    def upgrade(self) -> str:
        """What a rebuild would bring ('' when the backend has its current schema)."""
        ...

    # -- writing -------------------------------------------------------------------------

    def writer_busy(self) -> bool:
        """Whether another process holds the writer now (a peek: never waits)."""
        ...

    def hold_writer(self) -> None:
        """Take the writer now, as the first write would (waiting for another process's), and
        keep it until ``close``: what is read after cannot be changed by another writer."""
        ...

    def put(self, docs: Sequence[IndexDoc], replace: bool = True) -> dict[int, str]:
        """Add documents (replacing those of the same id unless ``replace`` is False);
        returns the ones refused, id -> reason. Not visible until commit()."""
        ...

    def delete(self, ids: Sequence[int]) -> None:
        """Remove the documents of these messages (not visible until commit())."""
        ...

    def commit(self, watermark: int | None = None, generation: int | None = None) -> None:
        """Make what was put and deleted durable and searchable, and record the marker."""
        ...

    def marker(self) -> IndexMarker | None:
        """What the backend's own record says it holds (None: no record)."""
        ...

    def clear(self) -> None:
        """Delete every document and the marker (for a full rebuild)."""
        ...

    def close(self) -> None:
        """Release the writer (and its lock)."""
        ...

    def refresh_statistics(self) -> None:
        """After many documents were written (a heal, an import, a reindex): bring what the
        backend plans its searches with up to date."""
        ...

    # -- reading -------------------------------------------------------------------------

    def search(self, node: q.Node, limit: int, offset: int = 0,
               order: str = "newest") -> tuple[int, list[int]]:
        """(total matches, message ids of one page in ``order``)."""
        ...

    def search_counted(self, node: q.Node, limit: int, offset: int = 0,
                       order: str = "newest", facets: int = 0, reach: bool = False
                       ) -> tuple[int, list[int], FacetCounts]:
        """(total, ids of one page, facet counts with ``facets`` values each, none if 0).
        ``reach``: the query is a principal's whole reach (a backend may keep its counts)."""
        ...

    def facet_counts(self, node: q.Node, size: int = 20) -> FacetCounts:
        """Each facet's ``size`` most frequent values among the matches."""
        ...

    def count(self, node: q.Node) -> int:
        """How many messages match."""
        ...

    def ids(self, node: q.Node, page: int = 10_000) -> Iterator[int]:
        """Every matching message id, newest first."""
        ...

    def referring(self, message_ids: Sequence[str], limit: int = 500) -> list[int]:
        """Ids of messages that reply to or reference any of these Message-IDs."""
        ...

    def doc_count(self) -> int:
        """How many documents the backend holds (committed)."""
        ...

    def ids_through(self, watermark: int, tier: str | None = None) -> list[int]:
        """The id of every document up to ``watermark`` (of one tier, if given), once per
        document: an id twice means a doubled document."""
        ...

    def size_bytes(self) -> int:
        """What the index takes on disk."""
        ...
