"""Forwarded messages nested many levels deep: each text is taken once, the text one message
gives the index is capped (a defect says so), and a message the index will not take is one
recorded failure, never the end of an import or of the archiver.

Each nested level used to repeat the text of every level below it, so a 4 KB message of 21
levels asked for 2^21 times its text (555 million characters, 6 GB) and aborted the index.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from mailvault.capture.drain import Drain
from mailvault.capture.spool import Position, Spool
from mailvault.ingest.files import FileOptions, Reader
from mailvault.ingest.pipeline import Pipeline
from mailvault.records import Provenance
from mailvault.search.document import IndexDoc
from mailvault.search.index import SearchIndex
from mailvault.store import catalog
from mailvault.vault import Vault
from tests.capture.test_drain import LocalSource
from tests.support import build_message, count, invoke, nested_message, run, write_eml_folder

LEVELS = 21
# A worker preparing the message gets this much address space: the old code needed 6 GB.
WORKER_MEMORY_BYTES = 1536 * 1024 * 1024

_PREPARE = """
import json, sys
from mailvault.ingest.prepare import WorkerConfig, prepare
from mailvault.search.extract import Limits
raw = sys.stdin.buffer.read()
done = prepare(raw, WorkerConfig(part_min_bytes=4096, compression_level=3, limits=Limits(),
                                 tier="active", max_text_chars=4_000_000))
print(json.dumps({"body": len(done.doc.body), "attachment": len(done.doc.attachment),
                  "defects": done.fields.defects}))
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))


def test_the_text_of_nested_messages_is_taken_once() -> None:
    raw = nested_message(LEVELS)
    # What a pipeline worker does, in a process of bounded memory.
    done = subprocess.run([sys.executable, "-c", _PREPARE], input=raw, capture_output=True,
                          preexec_fn=_limit_memory, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = json.loads(done.stdout)
    # Every level's headers and text once: about as much text as the message has bytes.
    assert result["body"] + result["attachment"] < 2 * len(raw)
    assert "MIME structure nested too deeply" in result["defects"]
    assert not any(d.startswith("indexed text cut") for d in result["defects"])


def _defects(vault: Path, subject: str) -> list[str]:
    """The parse defects the catalog recorded at import (``search --json`` shows them)."""
    found = invoke("search", f'subject:"{subject}"', "--vault", vault, "--json").json()
    assert len(found) == 1, found
    defects: list[str] = found[0]["defects"]
    return defects


def _only_id(vault: Path, subject: str) -> int:
    found = invoke("search", f'subject:"{subject}"', "--vault", vault, "--json")
    rows = found.json()
    assert len(rows) == 1, rows
    return int(rows[0]["id"])


def test_import_caps_the_text_of_one_message_and_says_so(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    write_eml_folder(tmp_path / "mail", [nested_message(LEVELS), build_message(
        subject="An ordinary neighbour", body="Plain words about the quarterly report.\n")])
    # A cap below the message's text, so that the cut and its defect show.
    result = run("import", tmp_path / "mail", "--vault", vault, "--json",
                 env={"MAILVAULT_SEARCH_MAX_TEXT_CHARS": "600"}, prefix=_prlimit())
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert json.loads(result.stdout)["archived"] == 2
    assert count(vault, "subject:ordinary quarterly") == 1
    assert "indexed text cut at 600 characters" in _defects(vault, "nested level 0")
    # The first levels' text is within the cap and searchable; the deepest is not.
    assert count(vault, "attachment:level1") == 1
    assert count(vault, "innermost") == 0
    # `show` parses without the cap: the defect is the one recorded at import.
    shown = invoke("show", str(_only_id(vault, "nested level 0")), "--vault", vault)
    assert shown.exit_code == 0


def _prlimit() -> list[str]:
    """Run the import with its memory bounded (workers inherit the limit)."""
    return ["prlimit", f"--as={4 * 1024 * 1024 * 1024}"]


def _spool_and_drain(vault: Vault, spool_folder: Path, messages: list[bytes]) -> None:
    """Spool the messages as SMTP would and drain them through the archiver's pipeline."""
    spool = Spool(spool_folder, 1 << 24, 0)
    spool.start()

    async def store() -> None:
        for raw in messages:
            await spool.store(raw, Provenance(kind="smtp", source="test",
                                              envelope_to=("bob@example.org",)))

    asyncio.run(store())
    source = LocalSource(spool, len(messages))
    with Pipeline(vault, actor="test") as pipeline:
        Drain(source, pipeline, Position(0, 0)).run()
        pipeline.flush()
    spool.close()


def test_the_spool_drain_archives_a_deeply_nested_message(vault: Vault, tmp_path: Path) -> None:
    vault.settings.search.max_text_chars = 600
    _spool_and_drain(vault, tmp_path / "spool", [
        nested_message(LEVELS, words="captured"),
        build_message(subject="Captured neighbour")])
    assert count(vault.path, "subject:captured") == 2
    assert count(vault.path, 'attachment:"captured level 1"') == 1
    assert count(vault.path, "innermost") == 0
    with vault.engine.connect() as conn:
        row = catalog.resolve(conn, str(_only_id(vault.path, "captured level 0")))
    assert "MIME structure nested too deeply" in row.defects
    assert "indexed text cut at 600 characters" in row.defects


class _RefusingIndex(SearchIndex):
    """The real index, but a document whose subject says 'poison' cannot be built: the
    stand-in for whatever input a Tantivy release may one day refuse or fail on."""

    def _document(self, doc: IndexDoc):  # type: ignore[no-untyped-def]
        if "poison" in doc.subject:
            raise ValueError("this document cannot be indexed")
        return super()._document(doc)


@pytest.fixture
def refusing_vault(vault: Vault) -> Vault:
    vault.index.close()
    vault.index = _RefusingIndex(vault.index.path, vault.settings.search.index_heap_mb)
    return vault


def test_a_message_the_index_refuses_is_one_recorded_failure(refusing_vault: Vault,
                                                              tmp_path: Path) -> None:
    vault = refusing_vault
    messages = [build_message(subject=f"drained {i}") for i in range(3)]
    messages.insert(1, build_message(subject="poison pill"))
    _spool_and_drain(vault, tmp_path / "spool", messages)
    # Every message is archived; the other three are searchable, the drain went on.
    with vault.engine.connect() as conn:
        assert catalog.max_message_id(conn) == 4
        failures = catalog.failures(conn)
        watermark = catalog.get_watermark(conn)
    assert count(vault.path, "subject:drained") == 3
    assert [f["kind"] for f in failures] == ["index"]
    assert "could not be indexed" in failures[0]["reason"]
    assert "this document cannot be indexed" in failures[0]["reason"]
    # The index is not left behind for ever on its account.
    assert watermark == 4
    status = invoke("status", "--vault", vault.path, "--json").json()
    assert status["failure_count"] == 1 and status["failures"][0]["kind"] == "index"
    # A reindex tries it again: still refused, still one failure, and the rest is indexed.
    vault.heal_index()
    with vault.engine.begin() as conn:
        catalog.queue_reindex(conn, [1, 2, 3, 4])
    vault.heal_index()
    with vault.engine.connect() as conn:
        assert len(catalog.failures(conn)) == 1
    assert count(vault.path, "subject:drained") == 3


def test_import_summary_names_a_message_the_index_refuses(refusing_vault: Vault,
                                                          tmp_path: Path) -> None:
    vault = refusing_vault
    write_eml_folder(tmp_path / "mail", [build_message(subject="poison again"),
                                         build_message(subject="fine one")])
    with Pipeline(vault, actor="test") as pipeline:
        report = pipeline.archive_many(Reader([tmp_path / "mail"], FileOptions()))
    assert report.archived == 2
    assert len(report.not_indexed) == 1
    assert "0000.eml" in report.not_indexed[0][0]
    assert count(vault.path, "subject:fine") == 1
