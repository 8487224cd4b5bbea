"""A PST item the reader rebuilt as MIME carries what parse() would read from it (a
KnownMessage), so the pipeline does not parse it again: the catalog rows and index documents
must be exactly those of a parse, and the stored bytes the same. The same holds when the
reading processes prepare the messages themselves (PreparedIncoming), and a message prepared
with another config than the pipeline's is prepared again by its workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailvault.ingest.pipeline import Pipeline
from mailvault.ingest.prepare import PreparedIncoming, WorkerConfig, prepare, prepared_incoming
from mailvault.outlook import source
from mailvault.outlook.ndb import CRYPT_CYCLIC
from mailvault.outlook.source import OutlookTally, pst_items
from mailvault.records import Incoming, Unreadable
from mailvault.search.document import IndexDoc
from mailvault.search.extract import Limits
from mailvault.store import catalog, schema
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


Items = Sequence[Incoming] | Callable[[Pipeline], Iterable[Incoming | Unreadable]]


def _archived(path: Path, items: Items, workers: int = 1, batch_size: int = 500) -> tuple[
        dict[str, list[Any]], list[IndexDoc], list[bytes]]:
    """The catalog rows an archive of ``items`` (or of what a function of the pipeline
    gives) writes in batches of ``batch_size`` (the first one trains the zstd dictionary),
    the documents it indexes, and each message's bytes read back."""
    docs: list[IndexDoc] = []
    with Vault.create(path) as vault:
        put = vault.index.put

        def keep(batch: Sequence[IndexDoc], replace: bool = True) -> dict[int, str]:
            docs.extend(batch)
            return put(batch, replace=replace)

        vault.index.put = keep  # type: ignore[method-assign]
        with Pipeline(vault, actor="test", workers=workers) as pipeline:
            pipeline.batch_size = batch_size
            pipeline.archive_many(items(pipeline) if callable(items) else items)
        rows: dict[str, list[Any]] = {}
        with vault.engine.connect() as conn:
            for table in (schema.messages, schema.addresses, schema.attachments,
                          schema.provenance, schema.failures):
                # Every column but the clock's (archived_at, received_at: when it was done).
                rows[table.name] = [
                    {k: v for k, v in row._mapping.items() if not k.endswith("_at")}
                    for row in conn.execute(select(table).order_by(*table.primary_key))]
            found = catalog.messages_by_id(conn, [row["id"] for row in rows["messages"]])
        raws = [vault.read_raw(row) for row in found]
    return rows, sorted(docs, key=lambda d: d.id), raws


def test_an_import_with_and_without_the_known_structure_is_the_same(
        written: list[Path], tmp_path: Path) -> None:
    items = _mail(written[0])
    assert all(item.known is not None for item in items)
    told = _archived(tmp_path / "told", items)
    parsed = _archived(tmp_path / "parsed", [replace(item, known=None) for item in items])
    assert len(told[0]["messages"]) == len(items)
    _assert_same(told, parsed)


def _assert_same(archived: tuple[dict[str, list[Any]], list[IndexDoc], list[bytes]],
                 expected: tuple[dict[str, list[Any]], list[IndexDoc], list[bytes]]) -> None:
    rows, docs, raws = archived
    for table, expected_rows in expected[0].items():
        assert rows[table] == expected_rows, table
    assert len(docs) == len(expected[1])
    for doc, expected_doc in zip(docs, expected[1], strict=True):
        assert doc == expected_doc
    assert raws == expected[2]


def test_messages_prepared_by_the_reading_processes_archive_as_parsed_ones(
        written: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the reading processes as an import runs them: the chunks asked for before the
    pipeline's dictionary exists are prepared by its workers, the rest where they were
    read; everything as a parse of every message gives."""
    monkeypatch.setattr(source, "CHUNK_ITEMS", 8)
    monkeypatch.setattr(source, "PREPARED_CHUNKS_AHEAD", 2)
    seen: list[Incoming] = []

    def keeping(items: Iterable[Incoming | Unreadable]) -> Iterator[Incoming | Unreadable]:
        for item in items:
            if isinstance(item, Incoming):
                seen.append(item)
            yield item

    def read(pipeline: Pipeline) -> Iterable[Incoming | Unreadable]:
        return keeping(pst_items(written[0], None, OutlookTally(), lambda _size: None,
                                 preparation=pipeline.source_preparation()))

    # Two reading processes; the dictionary is trained on the first batch of 100, and the
    # chunks asked for after that are prepared where they are read.
    through = _archived(tmp_path / "through", read, workers=2, batch_size=100)
    assert any(isinstance(i, PreparedIncoming) for i in seen)
    assert any(not isinstance(i, PreparedIncoming) for i in seen)
    parsed = _archived(tmp_path / "parsed", [replace(i, known=None) for i in _mail(written[0])],
                       batch_size=100)
    assert len(through[0]["messages"]) == len(seen)
    _assert_same(through, parsed)


def test_a_message_prepared_with_another_config_is_prepared_again(
        written: list[Path], tmp_path: Path) -> None:
    items = _mail(written[0])
    # No dictionary, another level, no text: none of it may reach the vault.
    other = replace(CONFIG, compression_level=1, max_text_chars=10, part_min_bytes=1 << 30)
    prepared = [prepared_incoming(item, other) for item in items]
    _assert_same(_archived(tmp_path / "other", prepared),
                 _archived(tmp_path / "parsed", [replace(i, known=None) for i in items]))
