"""Index documents from archived messages: the pipeline's fast path, healing and rebuilding.

The pipeline builds documents from what its workers parsed; everything else (messages the
index missed after a crash, messages whose arrivals changed, a full rebuild) reads the bytes
back from the store, parses them again and builds the same document.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING

from mailvault.compliance import audit
from mailvault.ingest.provenance import Provenance
from mailvault.message import ParsedMessage, parse
from mailvault.search.document import (
    FULL_TEXT_TIERS,
    IndexDoc,
    message_document,
    with_arrivals,
)
from mailvault.search.extract import Limits, extractor
from mailvault.store import catalog

if TYPE_CHECKING:
    from mailvault.vault import Vault

_BATCH = 500


def document(message_id: int, parsed: ParsedMessage, size: int, tier: str,
             arrivals: list[Provenance], full_text: bool = True) -> IndexDoc:
    """The index document of a message: headers, text, and what its arrivals add."""
    return with_arrivals(message_document(parsed, size, tier, full_text), message_id, arrivals)


def heal(vault: Vault, progress: Callable[[int], None] | None = None) -> int:
    """Index every message above the watermark and every queued one (a queued one that no
    longer exists loses its document); returns the count.

    Only the holder of the index writer heals: when another process holds it (a running
    `serve`'s archiver), that process heals, and this returns 0 at once instead of waiting.
    """
    if vault.index.writer_busy():
        return 0
    done = 0
    with vault.engine.connect() as conn:
        watermark = catalog.get_watermark(conn)
    while True:
        with vault.engine.connect() as conn:
            rows = list(islice(catalog.iter_messages(conn, after_id=watermark), _BATCH))
        if not rows:
            break
        _index_rows(vault, rows)
        watermark = rows[-1].id
        with vault.engine.begin() as conn:
            catalog.set_watermark(conn, watermark)
        done += len(rows)
        if progress:
            progress(done)
    while True:
        with vault.engine.connect() as conn:
            ids = catalog.reindex_pending(conn, _BATCH)
            rows = catalog.messages_by_id(conn, ids)
        if not ids:
            break
        # A queued id without a message was disposed of: its document goes.
        present = {r.id for r in rows}
        vault.index.delete([i for i in ids if i not in present])
        _index_rows(vault, rows)
        with vault.engine.begin() as conn:
            catalog.clear_reindex(conn, ids)
        done += len(rows)
        if progress:
            progress(done)
    return done


def rebuild(vault: Vault, actor: str, progress: Callable[[int], None] | None = None) -> int:
    """Throw the index away and build it again from store and catalog (audited: a rebuilt
    index agrees with whatever the catalog holds, so the log says when one was made)."""
    vault.index.clear()
    with vault.engine.begin() as conn:
        catalog.set_watermark(conn, 0)
        audit.record(conn, actor, "reindex",
                     {"messages": catalog.count_ids_between(conn, 0, 2**62)})
    return heal(vault, progress)


def _index_rows(vault: Vault, rows: list[catalog.MessageRow]) -> None:
    settings = vault.settings.search
    extract = extractor(Limits(max_bytes=settings.extract_max_mb * 1024 * 1024,
                               timeout_s=settings.extract_timeout_s,
                               max_chars=settings.extract_max_chars))
    with vault.engine.connect() as conn:
        arrivals = catalog.arrivals_of(conn, [r.id for r in rows])
    docs = []
    for row in rows:
        full_text = row.tier in FULL_TEXT_TIERS
        parsed = parse(vault.read_raw(row), extract if full_text else None)
        docs.append(document(row.id, parsed, row.size, row.tier, arrivals[row.id], full_text))
    vault.index.put(docs)
    vault.index.commit()

