"""Everything a vault holds is readable by its owner alone (issue 10, finding 11).

The catalog holds every subject and address and the audit log's search queries; the index and
serve-status.json say as much. Whatever the umask of the person who runs mailvault, every file
the vault makes must be 0600 (or read-only for the owner) and every folder 0700, including the
files third-party code makes (SQLite's -wal/-shm, Tantivy's segments).
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.config import load_settings
from mailvault.store import file_modes
from mailvault.vault import CATALOG_FILE, Vault
from tests.capture.conftest import wait_until
from tests.support import MAILVAULT, build_message, invoke, write_eml_folder

GROUP_OR_OTHER = stat.S_IRWXG | stat.S_IRWXO


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask (files 0644, folders 0755) for this test and its children."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def exposed(root: Path) -> list[str]:
    """Every entry under ``root`` (itself included) that another user could read or enter."""
    found = []
    for entry in [root, *root.rglob("*")]:
        mode = entry.lstat().st_mode
        if mode & GROUP_OR_OTHER or (stat.S_ISDIR(mode) and stat.S_IMODE(mode) != 0o700):
            found.append(f"{entry.relative_to(root.parent)} {stat.S_IMODE(mode):04o}")
    return found


def catalog_files(vault: Path) -> list[Path]:
    """The catalog's file in the vault folder: SQLite's, none for a PostgreSQL catalog."""
    return [] if load_settings(vault).catalog.url else [vault / CATALOG_FILE]


def drained(vault: Path) -> int:
    """How many messages the running server says it archived (read from its status file, not
    by opening the vault: an open would tighten what the server left loose)."""
    try:
        status = json.loads((vault / "serve-status.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(status["drained"].get("archived", 0))


def serve_one_message(vault: Path) -> list[str]:
    """Run `mailvault serve` as its own program under the loose umask, hand it one message
    over SMTP, and once it is archived return what is exposed while the server still runs
    (the catalog's -wal and -shm, the spool, the status file, the open volume)."""
    with subprocess.Popen([*MAILVAULT, "serve", "--vault", str(vault), "--smtp",
                           "127.0.0.1:0"], stdout=subprocess.PIPE, text=True,
                          umask=0o022) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            assert line.startswith("listening: smtp "), line
            port = int(line.rsplit(":", 1)[1])
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("carol@example.org", ["journal@example.org"],
                                build_message(subject="captured live"))
            wait_until(lambda: drained(vault) == 1, what="the server to archive the message")
            for catalog in catalog_files(vault):
                assert catalog.with_name(catalog.name + "-wal").exists()
            assert list((vault / "spool").iterdir())
            return exposed(vault)
        finally:
            server.terminate()
            assert server.wait(90) == 0


def test_every_file_and_folder_of_a_used_vault_is_owner_only(
        tmp_path: Path, loose_umask: None) -> None:
    # Each step is checked before the next opens the vault (an open tightens what is loose).
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    assert exposed(vault) == []
    eml = write_eml_folder(tmp_path / "eml", [build_message(subject=f"imported {n}")
                                              for n in range(3)])
    assert invoke("import", *eml, "--vault", vault).exit_code == 0
    assert exposed(vault) == []
    assert invoke("search", "subject:imported", "--vault", vault).exit_code == 0
    assert exposed(vault) == []
    assert serve_one_message(vault) == []
    assert exposed(vault) == []
    assert invoke("count", "", "--vault", vault).text.strip() == "4"
    assert invoke("retention", "default", "--period", "1d", "--vault", vault).exit_code == 0
    assert invoke("dispose", "--vault", vault).exit_code == 0
    assert list((vault / "reports").glob("disposition-*.json"))
    assert exposed(vault) == []


def test_a_vault_made_by_the_library_is_owner_only(vault_path: Path,
                                                   loose_umask: None) -> None:
    Vault.create(vault_path).close()
    assert exposed(vault_path) == []


def test_opening_a_vault_tightens_what_an_older_version_left_open(
        vault_path: Path, loose_umask: None) -> None:
    Vault.create(vault_path).close()
    loose = [vault_path, vault_path / "index", *catalog_files(vault_path),
             vault_path / "mailvault.toml"]
    for path in loose:
        path.chmod(0o755 if path.is_dir() else 0o644)
    Vault.open(vault_path).close()
    assert exposed(vault_path) == []


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from mailvault.config import load_settings
from mailvault.store import file_modes

# Killed between writing its temporary and renaming it over the file.
os.replace = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
file_modes.write_replacing(Path(sys.argv[1]), b"half")
"""


def kill_a_writer_of(path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], check=False)
    assert done.returncode == -signal.SIGKILL


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_temporary_left_by_a_killed_writer_is_removed_when_the_vault_opens(
        vault_path: Path) -> None:
    Vault.create(vault_path).close()
    reports = vault_path / "reports"
    reports.mkdir()
    kill_a_writer_of(vault_path / "serve-status.json")
    kill_a_writer_of(reports / "disposition-000001.json")
    assert temporaries(vault_path) and temporaries(reports)
    Vault.open(vault_path).close()
    assert temporaries(vault_path) == temporaries(reports) == []
    assert not (vault_path / "serve-status.json").exists()


def test_the_next_write_of_the_same_file_removes_a_killed_writers_temporary(
        tmp_path: Path) -> None:
    target = tmp_path / "mailbox.json"
    kill_a_writer_of(target)
    assert len(temporaries(tmp_path)) == 1
    file_modes.write_replacing(target, b"whole")
    assert temporaries(tmp_path) == []
    assert target.read_bytes() == b"whole"


def test_a_living_writers_temporary_is_left_alone(tmp_path: Path) -> None:
    # This process is alive: its temporary may be being written by another of its threads.
    mine = tmp_path / f".status.json.{os.getpid()}-0123abcd.tmp"
    mine.write_bytes(b"")
    assert file_modes.remove_left_temporaries(tmp_path) == []
    assert mine.exists()
