"""A disposal while another process heals the index: whichever order their steps take, no
document of a disposed message may stay in the index with nothing logged to remove it (the
state the 50-kill disposition loop once ended in: 190 documents for 130 messages).

The other process is held at a chosen step of its heal (``die_at`` with
``MAILVAULT_TEST_HOLD``) while `dispose` runs to its end, then let go.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mailvault.config import load_settings
from mailvault.search import query as q
from mailvault.search.index import SearchIndex
from mailvault.store import catalog, schema
from mailvault.vault import open_catalog
from tests.reliability.die_at import HOLD
from tests.reliability.invariants import check_vault
from tests.reliability.processes import catalog_scalar, wait_for
from tests.support import build_message, catalog_sql, invoke, write_mbox

ROOT = Path(__file__).resolve().parents[2]
PUT = "mailvault.search.index:SearchIndex.put"


def digests(messages: list[bytes]) -> set[str]:
    return {hashlib.sha256(m).hexdigest() for m in messages}


def archived(tmp_path: Path) -> tuple[Path, set[str], set[str]]:
    """A vault holding 8 expired and 3 current messages: (vault, current, expired)."""
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    assert invoke("retention", "default", "--period", "1y", "--vault", vault).exit_code == 0
    expired = [build_message(subject=f"expired {i}", date=datetime(2001, 5, 6, tzinfo=UTC))
               for i in range(8)]
    current = [build_message(subject=f"current {i}", date=datetime.now(UTC))
               for i in range(3)]
    write_mbox(tmp_path / "all.mbox", expired + current)
    assert invoke("import", tmp_path / "all.mbox", "--vault", vault).exit_code == 0
    return vault, digests(current), digests(expired)


def log_every_message(vault: Path) -> None:
    """Log every message for a new document, as a tier move or a new arrival does (through
    the catalog alone: opening the vault would heal at once)."""
    engine = open_catalog(vault, load_settings(vault))
    try:
        with engine.begin() as conn:
            catalog.queue_reindex(conn, conn.execute(select(schema.messages.c.id)).scalars())
    finally:
        engine.dispose()


def logged(vault: Path) -> int:
    """The newest entry of the reindex log."""
    return int(catalog_scalar(
        vault, "select coalesce(max(value), 0) from index_state where name = 'reindex_seq'"))


def as_left(vault: Path) -> tuple[list[int], list[int]]:
    """(the ids the index holds, the catalog's ids) as the heals left them: read without
    opening the vault, whose open would heal the index first."""
    indexed = sorted(SearchIndex(vault / "index").ids(q.MatchAll()))
    ids = sorted(row[0] for row in catalog_sql(vault, "select id from messages"))
    return indexed, ids


@contextlib.contextmanager
def held_heal(vault: Path, when: str, hold: Path) -> Iterator[None]:
    """`status` (whose open heals the index) held before or after it adds its documents;
    the block runs meanwhile, and the heal then finishes."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.die_at", PUT, when, "1", "--", "status",
         "--vault", str(vault)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), HOLD: str(hold)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: hold.with_name(hold.name + ".reached").exists() or
                 child.poll() is not None, "the heal to reach its documents")
        assert child.poll() is None, "the heal ended without adding documents"
        yield
        hold.with_name(hold.name + ".go").touch()
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr.decode()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.timeout(300)
def test_a_disposal_while_another_heal_rebuilds_the_same_messages(tmp_path: Path) -> None:
    vault, current, expired = archived(tmp_path)
    log_every_message(vault)
    before = logged(vault)
    # The heal has added their documents from what it read (not committed), holding the
    # writer: the disposal's own heal finds the writer taken and leaves its deletions
    # logged, after the entries the held heal applies.
    with held_heal(vault, "after", tmp_path / "hold"):
        assert invoke("dispose", "--vault", vault).exit_code == 0
        assert catalog_scalar(vault, "select count(*) from reindex_log where seq > ?",
                              before) == len(expired)
    indexed, ids = as_left(vault)
    assert indexed == ids
    facts = check_vault(vault, present=current, absent=expired)
    assert facts.messages == len(current)


@pytest.mark.timeout(300)
def test_a_disposal_while_a_heal_indexes_what_it_read_before(tmp_path: Path) -> None:
    vault, current, expired = archived(tmp_path)
    # The index is behind the catalog (as after a full disk): a heal writes every document.
    catalog_sql(vault, "update index_state set value = 0 where name = 'indexed_through'")
    before = logged(vault)
    # The heal has read the messages and their bytes, holding the writer (taken before it
    # read where to start): the disposal's heal finds it taken and leaves its deletions
    # logged; the held heal then adds the documents of what it read, and applies them.
    with held_heal(vault, "before", tmp_path / "hold"):
        assert invoke("dispose", "--vault", vault).exit_code == 0
        assert catalog_scalar(vault, "select count(*) from reindex_log where seq > ?",
                              before) == len(expired)
    # (A running serve opens nothing: the heal itself must leave no document behind.)
    indexed, ids = as_left(vault)
    assert indexed == ids
    facts = check_vault(vault, present=current, absent=expired)
    assert facts.messages == len(current)
