"""A PST item the reader rebuilt as MIME carries what parse() would read from it (a
KnownMessage), so the pipeline does not parse it again: the catalog rows and index documents
must be exactly those of a parse, and the stored bytes the same."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailvault.ingest.pipeline import Pipeline
from mailvault.ingest.prepare import WorkerConfig, prepare
from mailvault.outlook.ndb import CRYPT_CYCLIC
from mailvault.outlook.source import OutlookTally, pst_items
from mailvault.records import Incoming
from mailvault.search.document import IndexDoc
from mailvault.search.extract import Limits
from mailvault.store import schema
from mailvault.vault import Vault
from tests.outlook.pst_writer import Format, write_pst

CONFIG = WorkerConfig(part_min_bytes=4096, compression_level=3, limits=Limits(),
                      tier="active", max_text_chars=2_000_000)


def _mail(path: Path) -> list[Incoming]:
    return [i for i in pst_items(path, None, OutlookTally(), lambda _size: None)
            if isinstance(i, Incoming)]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """PSTs of the test-side writer: 512-byte pages, and 4 KiB pages with cyclic encryption."""
    folder = tmp_path_factory.mktemp("known")
    paths = [folder / "unicode.pst", folder / "four_k.pst"]
    write_pst(paths[0], 150)
    write_pst(paths[1], 150, seed=11, fmt=Format(four_k=True, crypt=CRYPT_CYCLIC))
    return paths


def test_known_structure_gives_what_a_parse_gives(pst_dir: Path, written: list[Path]) -> None:
    known = 0
    for path in [*sorted(pst_dir.glob("*.pst")), *written]:
        for item in _mail(path):
            if item.known is None:
                continue
            known += 1
            for config in (CONFIG, replace(CONFIG, max_text_chars=40)):
                parsed = prepare(item.raw, config)
                told = prepare(item.raw, config, item.known)
                where = f"{path.name} item {item.provenance.item}"
                assert told.fields == parsed.fields, where
                assert told.doc == parsed.doc, where
                assert (told.skeleton, told.skeleton_size, told.parts) == (
                    parsed.skeleton, parsed.skeleton_size, parsed.parts), where
    # Most rebuilt mail is told (not signed or encrypted, no attached items): 300 written
    # messages and the corpus's plain ones.
    assert known >= 300


def _archived(path: Path, items: Sequence[Incoming]) -> tuple[dict[str, list[Any]],
                                                             list[IndexDoc]]:
    """The catalog rows an archive of ``items`` writes, and the documents it indexes."""
    docs: list[IndexDoc] = []
    with Vault.create(path) as vault:
        put = vault.index.put

        def keep(batch: Sequence[IndexDoc], replace: bool = True) -> dict[int, str]:
            docs.extend(batch)
            return put(batch, replace=replace)

        vault.index.put = keep  # type: ignore[method-assign]
        with Pipeline(vault, actor="test", workers=1) as pipeline:
            pipeline.archive_many(items)
        rows: dict[str, list[Any]] = {}
        with vault.engine.connect() as conn:
            for table in (schema.messages, schema.addresses, schema.attachments,
                          schema.provenance, schema.failures):
                # Every column but the clock's (archived_at, received_at: when it was done).
                rows[table.name] = [
                    {k: v for k, v in row._mapping.items() if not k.endswith("_at")}
                    for row in conn.execute(select(table).order_by(*table.primary_key))]
    return rows, sorted(docs, key=lambda d: d.id)


def test_an_import_with_and_without_the_known_structure_is_the_same(
        written: list[Path], tmp_path: Path) -> None:
    items = _mail(written[0])
    assert all(item.known is not None for item in items)
    told_rows, told_docs = _archived(tmp_path / "told", items)
    parsed_rows, parsed_docs = _archived(tmp_path / "parsed",
                                         [replace(item, known=None) for item in items])
    assert len(told_rows["messages"]) == len(items)
    for table, rows in parsed_rows.items():
        assert told_rows[table] == rows, table
    assert len(told_docs) == len(items)
    for told, parsed in zip(told_docs, parsed_docs, strict=True):
        assert told == parsed
