"""The index knows what it holds: an old copy of the index folder put back, or a deleted one,
is found out and healed on the next open, and `status` shows the gap while it cannot be
healed. A full disk never stops reading, and an import that fills the disk ends with one
sentence saying how many messages were committed."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.full_disk import fill, resize, tmpfs
from tests.support import (
    NODE_VARIABLE,
    build_message,
    catalog_sql,
    count,
    heal,
    invoke,
    reindex_log_entries,
    run,
    search_json,
    sqlite_only,
    write_eml_folder,
    write_mbox,
)

EARLY = 30
LATE = 8
WRITER_LOCK = ".tantivy-writer.lock"
MARKER_FILE = "mailvault-index.json"  # the index folder's own record of what it holds


def index_status(vault: Path) -> dict[str, object]:
    result = invoke("status", "--vault", vault, "--json")
    assert result.exit_code == 0, result.text
    index: dict[str, object] = result.json()["index"]
    return index


def vault_with_old_index(tmp_path: Path, vault: Path) -> None:
    """Import EARLY messages, keep a copy of the index folder, import LATE more, and put the
    old copy back (the catalog says LATE messages more than the copy holds)."""
    early = [build_message(subject=f"early {i}", body=f"early word{i}\n") for i in range(EARLY)]
    late = [build_message(subject=f"late {i}", body=f"late word{i}\n") for i in range(LATE)]
    write_eml_folder(tmp_path / "early", early)
    write_eml_folder(tmp_path / "late", late)
    assert invoke("import", tmp_path / "early", "--vault", vault).exit_code == 0
    shutil.copytree(vault / "index", tmp_path / "index-copy")
    assert invoke("import", tmp_path / "late", "--vault", vault).exit_code == 0
    put_back(tmp_path / "index-copy", vault / "index")


def put_back(copy: Path, index: Path) -> None:
    """Replace what the index folder holds by the copy (the folder may be a mount point)."""
    for path in index.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    shutil.copytree(copy, index, dirs_exist_ok=True)


def committed(vault: Path) -> int:
    """Messages in the catalog, read without opening the vault (nothing heals)."""
    [(held,)] = catalog_sql(vault, "SELECT count(*) FROM messages")
    return int(held)


def test_an_old_copy_of_the_index_put_back_heals_on_open(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    vault_with_old_index(tmp_path, vault)
    assert count(vault, "") == EARLY + LATE
    assert {r["subject"] for r in search_json(vault, "late")} == {
        f"late {i}" for i in range(LATE)}
    index = index_status(vault)
    assert (index["indexed"], index["messages"], index["behind"]) == (
        EARLY + LATE, EARLY + LATE, 0)


def test_status_shows_the_gap_while_the_index_cannot_be_healed(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    vault_with_old_index(tmp_path, vault)
    # Another process holds the index writer (as a running `serve` does): nobody else heals.
    fd = os.open(vault / "index" / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        index = index_status(vault)
        assert (index["indexed"], index["messages"], index["behind"]) == (
            EARLY, EARLY + LATE, LATE)
        text = invoke("status", "--vault", vault).text
        assert f"indexed {EARLY} of {EARLY + LATE}" in text
    finally:
        os.close(fd)
    index = index_status(vault)
    assert (index["indexed"], index["behind"]) == (EARLY + LATE, 0)
    assert f"indexed {EARLY + LATE} of {EARLY + LATE}" in invoke("status", "--vault",
                                                                 vault).text


def test_a_copy_older_than_changes_to_archived_messages_heals(tmp_path: Path) -> None:
    """What happened to messages already indexed (a tier move, a new arrival in another
    folder) after the copy was taken is in the index again after the copy is put back."""
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    messages = [build_message(subject=f"message {i}", body=f"word{i}\n") for i in range(20)]
    write_eml_folder(tmp_path / "inbox", messages)
    assert invoke("import", tmp_path / "inbox", "--vault", vault).exit_code == 0
    shutil.copytree(vault / "index", tmp_path / "index-copy")
    write_mbox(tmp_path / "Projects", messages[:3])
    assert invoke("import", tmp_path / "Projects", "--vault", vault).exit_code == 0
    assert invoke("tier", "move", "word5 OR word6", "--to", "deep", "--vault",
                  vault).exit_code == 0
    assert count(vault, "folder:projects") == 3
    put_back(tmp_path / "index-copy", vault / "index")
    assert count(vault, "folder:projects") == 3
    assert count(vault, "tier:deep") == 2
    assert count(vault, "") == 20
    assert index_status(vault)["behind"] == 0


def test_an_index_folder_without_a_marker_is_compared_with_the_catalog(
        tmp_path: Path) -> None:
    """An index written before markers existed (or whose marker was lost) is trusted as far as
    the catalog says, then checked document by document: missing documents and documents in
    the wrong tier are mended."""
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    write_eml_folder(tmp_path / "first", [build_message(subject=f"first {i}", body=f"w{i}\n")
                                          for i in range(20)])
    write_eml_folder(tmp_path / "more", [build_message(subject=f"more {i}") for i in range(5)])
    assert invoke("import", tmp_path / "first", "--vault", vault).exit_code == 0
    shutil.copytree(vault / "index", tmp_path / "index-copy")
    (tmp_path / "index-copy" / MARKER_FILE).unlink(missing_ok=True)
    assert invoke("tier", "move", "w3 OR w4", "--to", "deep", "--vault", vault).exit_code == 0
    assert invoke("import", tmp_path / "more", "--vault", vault).exit_code == 0
    put_back(tmp_path / "index-copy", vault / "index")
    assert count(vault, "") == 25
    assert count(vault, "tier:deep") == 2
    assert count(vault, "tier:active") == 23
    assert index_status(vault)["behind"] == 0


def test_a_deleted_index_folder_is_rebuilt_on_open(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    write_eml_folder(tmp_path / "mail", [build_message(subject=f"m {i}") for i in range(12)])
    assert invoke("import", tmp_path / "mail", "--vault", vault).exit_code == 0
    shutil.rmtree(vault / "index")
    assert count(vault, "") == 12


def test_reading_works_while_the_index_disk_is_full(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    write_eml_folder(tmp_path / "early", [build_message(subject=f"early {i}")
                                          for i in range(EARLY)])
    write_eml_folder(tmp_path / "late", [build_message(subject=f"late {i}")
                                         for i in range(LATE)])
    with tmpfs(vault / "index", "4m") as disk:
        assert invoke("init", "--vault", vault).exit_code == 0
        assert invoke("import", tmp_path / "early", "--vault", vault).exit_code == 0
        filler = fill(disk)
        # The messages are archived; only their index documents wait for space.
        late = invoke("import", tmp_path / "late", "--vault", vault)
        assert late.exit_code == 0
        assert f"archived {LATE}" in late.text
        assert "not searchable yet" in late.stderr
        assert committed(vault) == EARLY + LATE
        index = index_status(vault)
        assert (index["indexed"], index["messages"], index["behind"]) == (
            EARLY, EARLY + LATE, LATE)
        assert "full" in str(index["problem"])
        assert count(vault, "") == EARLY
        assert len(search_json(vault, "early")) == EARLY
        checked = invoke("verify", "--vault", vault, "--json")
        assert checked.json()["messages_checked"] == EARLY + LATE
        assert any(f"{LATE} messages have no index document" in p
                   for p in checked.json()["problems"])
        audit = invoke("audit", "verify", "--vault", vault, "--json")
        assert audit.exit_code == 0 and audit.json()["ok"]
        filler.unlink()
        assert count(vault, "") == EARLY + LATE
        assert index_status(vault)["behind"] == 0


def test_an_import_that_fills_the_disk_says_how_many_were_committed(tmp_path: Path) -> None:
    total = 320
    # Random hex compresses to half: 320 messages of 24 KB need more than the disk has for
    # their volumes alone (the catalog may be elsewhere: in PostgreSQL).
    messages = [build_message(subject=f"big {i}", body=os.urandom(9000).hex() + "\n")
                for i in range(total)]
    write_mbox(tmp_path / "big.mbox", messages)
    disk = tmp_path / "disk"
    env = {"MAILVAULT_INGEST_BATCH_SIZE": "10"}
    with tmpfs(disk, "2m"):
        vault = disk / "vault"
        assert invoke("init", "--vault", vault).exit_code == 0
        result = run("import", tmp_path / "big.mbox", "--vault", vault, env=env)
        assert result.returncode == 1
        stderr = result.stderr.decode()
        assert "Traceback" not in stderr
        # Progress lines may come first on a slow machine; the error is the last line.
        last = stderr.strip().splitlines()[-1]
        found = re.fullmatch(r"mailvault: the disk is full: (\d+) messages were committed "
                             r"before it filled; run the import again when there is space.*",
                             last)
        assert found, stderr
        done = int(found.group(1))
        assert 0 < done < total
        assert done == committed(vault)
        resize(disk, "16m")
        again = invoke("import", tmp_path / "big.mbox", "--vault", vault, "--json", env=env)
        assert again.exit_code == 0, again.stderr
        summary = again.json()
        assert (summary["archived"], summary["duplicates"]) == (total - done, done)
        assert count(vault, "") == total


@sqlite_only("the catalog's own disk fills (a PostgreSQL catalog's disk is the server's)")
def test_a_full_vault_disk_gives_one_sentence_where_a_read_must_be_audited(
        tmp_path: Path) -> None:
    """With the catalog's own disk full, what only reads works; a search, whose audit entry
    cannot be written, is refused in one sentence (every search is audited), never a
    traceback."""
    write_eml_folder(tmp_path / "mail", [build_message(subject=f"m {i}") for i in range(10)])
    with tmpfs(tmp_path / "disk", "6m") as disk:
        vault = disk / "vault"
        assert invoke("init", "--vault", vault).exit_code == 0
        assert invoke("import", tmp_path / "mail", "--vault", vault).exit_code == 0
        # A process that keeps the catalog open (as `serve` does) keeps its WAL files.
        held = sqlite3.connect(vault / "catalog.sqlite")
        try:
            held.execute("select count(*) from messages").fetchall()
            fill(disk)
            assert index_status(vault)["indexed"] == 10
            audit = invoke("audit", "verify", "--vault", vault, "--json")
            assert audit.exit_code == 0 and audit.json()["ok"]
            searched = run("count", "", "--vault", vault)
            assert searched.returncode == 1
            assert searched.stderr.decode().strip() == (
                "mailvault: the disk is full: the catalog cannot be written.")
        finally:
            held.close()


def test_each_node_applies_only_the_changes_it_missed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes' indexes follow one reindex log, each with its own cursor (named by the
    node): the one that was away applies the changes made meanwhile and rewrites nothing
    else; entries both applied are pruned; a node away for longer than the log keeps entries
    for finds itself behind the floor and rebuilds."""
    vault = tmp_path / "vault"
    messages = [build_message(subject=f"message {i}", body=f"word{i}\n") for i in range(20)]
    write_eml_folder(tmp_path / "inbox", messages)
    write_mbox(tmp_path / "Projects", messages[:3])
    monkeypatch.setenv(NODE_VARIABLE, "node-a")
    assert invoke("init", "--vault", vault).exit_code == 0
    assert invoke("import", tmp_path / "inbox", "--vault", vault).exit_code == 0
    # Node b's index: a copy of today's, which b has seen.
    shutil.copytree(vault / "index", tmp_path / "index-b")
    monkeypatch.setenv(NODE_VARIABLE, "node-b")
    assert heal(vault) == 0

    monkeypatch.setenv(NODE_VARIABLE, "node-a")
    assert invoke("tier", "move", "word5 OR word6", "--to", "deep", "--vault",
                  vault).exit_code == 0
    assert invoke("import", tmp_path / "Projects", "--vault", vault).exit_code == 0
    assert heal(vault) == 0  # a applied them as it went
    assert reindex_log_entries(vault) == 5  # kept: b has not applied them

    shutil.copytree(vault / "index", tmp_path / "index-a")
    put_back(tmp_path / "index-b", vault / "index")
    monkeypatch.setenv(NODE_VARIABLE, "node-b")
    assert heal(vault) == 5  # those five, not all twenty
    assert (count(vault, "folder:projects"), count(vault, "tier:deep"), count(vault, "")) == (
        3, 2, 20)
    assert reindex_log_entries(vault) == 0  # both have applied them: pruned

    # Node a has been away for 8 days; b moves on. With [search] node_absence_days = 30
    # the log waits for a, with the default 7 it does not.
    catalog_sql(vault, "UPDATE index_cursors SET seen_at = seen_at - ? WHERE name LIKE ?",
                8 * 86_400, "node-a:%")
    monkeypatch.setenv("MAILVAULT_SEARCH_NODE_ABSENCE_DAYS", "30")
    assert invoke("tier", "move", "word7", "--to", "deep", "--vault", vault).exit_code == 0
    assert count(vault, "tier:deep") == 3
    assert reindex_log_entries(vault) == 1  # kept for node a
    monkeypatch.delenv("MAILVAULT_SEARCH_NODE_ABSENCE_DAYS")
    assert invoke("tier", "move", "word8", "--to", "deep", "--vault", vault).exit_code == 0
    assert count(vault, "tier:deep") == 4
    assert reindex_log_entries(vault) == 0  # not kept for node a any more
    put_back(tmp_path / "index-a", vault / "index")
    monkeypatch.setenv(NODE_VARIABLE, "node-a")
    assert heal(vault) == 20  # behind the floor: every document again
    assert (count(vault, "tier:deep"), count(vault, "")) == (4, 20)
