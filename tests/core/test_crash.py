"""Crashes: kill -9 during an import loses nothing committed, leaves no corrupt state, and
the same import run again completes without duplicates; a crash between the catalog commit
and the index commit heals when the vault is next opened."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mailvault.search.index import SearchIndex
from mailvault.vault import Vault
from tests.core.corpus_reading import mbox_messages
from tests.support import (
    MAILVAULT,
    build_message,
    catalog_sql,
    count,
    invoke,
    run,
    write_eml_folder,
)

ENRON_MESSAGES = 3034
KILL_AFTER = 400


def catalog_count(vault: Path) -> int:
    """Messages committed to the catalog, read as any other reader would (no vault opened,
    so nothing heals)."""
    [(held,)] = catalog_sql(vault, "SELECT count(*) FROM messages")
    return int(held)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command and its worker processes (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_kill_during_an_import_then_run_it_again(tmp_path: Path, corpus: Path) -> None:
    enron = corpus / "mbox" / "enron-allen-p"
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    # Small batches: many commits, so the kill lands between two of them.
    env = {**os.environ, "MAILVAULT_INGEST_BATCH_SIZE": "50"}
    process = subprocess.Popen([*MAILVAULT, "import", str(enron), "--vault", str(vault)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if catalog_count(vault) >= KILL_AFTER:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the import ended before it could be killed"
    finally:
        kill_group(process)
    committed = catalog_count(vault)
    assert KILL_AFTER <= committed < ENRON_MESSAGES

    # What the crash left is consistent: every committed message reads back and is indexed.
    checked = invoke("verify", "--vault", vault, "--json")
    assert checked.exit_code == 0, checked.text
    assert checked.json()["messages_checked"] == committed

    again = run("import", enron, "--vault", vault, "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["archived"] == ENRON_MESSAGES - committed
    assert summary["duplicates"] == committed

    expected = {m.sha256 for box in enron.glob("*.mbox") for m in mbox_messages(box)}
    rows = json.loads(invoke("search", "", "--vault", vault, "--json",
                             "--limit", "10000").stdout)
    assert sorted(r["sha256"] for r in rows) == sorted(expected)
    assert count(vault, "") == ENRON_MESSAGES
    stats = invoke("stats", "--vault", vault, "--json").json()
    assert (stats["arrivals"], stats["duplicate_arrivals"]) == (ENRON_MESSAGES, 0)
    final = invoke("verify", "--vault", vault, "--json")
    assert final.exit_code == 0 and final.json()["messages_checked"] == ENRON_MESSAGES


# A child that archives through the real pipeline and dies (SIGKILL, with its workers) at the
# first index commit: the catalog transaction is committed, the index commit never happens.
DIE_AT_INDEX_COMMIT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from mailvault.ingest.files import FileOptions, Reader
    from mailvault.ingest.pipeline import Pipeline
    from mailvault.search.index import SearchIndex
    from mailvault.vault import Vault

    def die(self, *_args, **_kwargs):
        os.killpg(0, signal.SIGKILL)

    SearchIndex.commit = die
    vault = Vault.open(Path(sys.argv[1]))
    with Pipeline(vault, actor="test") as pipeline:
        pipeline.archive_many(Reader([Path(sys.argv[2])], FileOptions()))
""")


def test_kill_between_catalog_and_index_commit_heals_on_open(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    invoke("init", "--vault", vault)
    write_eml_folder(tmp_path / "first", [build_message(subject=f"First {n}") for n in range(5)])
    second = [build_message(subject=f"Second {n}", body="a word: heliotrope\n")
              for n in range(7)]
    write_eml_folder(tmp_path / "second", second)
    assert invoke("import", tmp_path / "first", "--vault", vault).exit_code == 0

    child = subprocess.run([sys.executable, "-c", DIE_AT_INDEX_COMMIT, str(vault),
                            str(tmp_path / "second")], start_new_session=True,
                           capture_output=True, timeout=120, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert catalog_count(vault) == 12, "the catalog transaction was committed"
    index = SearchIndex(vault / "index")
    assert index.doc_count() == 5, "the index commit never happened"

    with Vault.open(vault) as opened:
        assert opened.index.doc_count() == 12
    assert count(vault, "") == 12
    assert count(vault, "heliotrope") == 7
    assert invoke("verify", "--vault", vault).exit_code == 0
    # Importing the same folder again finds everything already there.
    again = invoke("import", tmp_path / "second", "--vault", vault, "--json")
    assert (again.json()["archived"], again.json()["duplicates"]) == (0, 7)
