"""A killed export run again: it resumes from its checkpoint and ends with the same files as
an export that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mailvault.discovery.export import BATCH, UNLISTED
from tests.discovery.conftest import export, summary
from tests.support import MAILVAULT, run


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _written(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _killed_midway(vault: Path, killed: Path, fmt: str) -> bool:
    """Start an export and SIGKILL it once the first batch is past its checkpoint and the
    second is being written (more files than one batch writes); True when the kill landed
    before the summary was written."""
    command = [*MAILVAULT, "export", "", "--to", str(killed), "--format", fmt,
               "--vault", str(vault)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while _written(killed) < 400 and process.poll() is None:
            assert time.monotonic() < deadline, "the export wrote nothing"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    return process.returncode == -signal.SIGKILL and not (killed / "summary.json").exists()


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("fmt", ["eml", "mbox"])
def test_sigkill_then_resume_gives_the_same_files(corpus_vault: Path, tmp_path: Path,
                                                  fmt: str) -> None:
    whole = tmp_path / "whole"
    export(corpus_vault, whole, "", "--format", fmt)
    # On a quiet machine the export can end between two looks at its folder; each attempt
    # is a new export job in a new folder, until one is killed before its summary.
    landed = False
    for attempt in range(5):
        killed = tmp_path / f"killed-{attempt}"
        landed = _killed_midway(corpus_vault, killed, fmt)
        if landed:
            break
    assert landed, "every export ended before it could be killed"
    assert not (killed / "summary.json").exists()
    resumed = export(corpus_vault, killed, "", "--format", fmt)
    assert resumed["counts"]["errors"] == 0
    first, second = _files(whole), _files(killed)
    assert first.keys() == second.keys()
    different = [name for name in first if name not in UNLISTED and first[name] != second[name]]
    assert different == []
    assert summary(whole)["files"] == summary(killed)["files"]
    assert run("verify", "--export", killed).returncode == 0
    jobs = run("export-jobs", "--vault", corpus_vault, "--json")
    assert b'"state": "done"' in jobs.stdout


@pytest.mark.timeout(900)
def test_a_finished_export_is_not_written_again(corpus_vault: Path, tmp_path: Path) -> None:
    folder = tmp_path / "once"
    export(corpus_vault, folder, "from:pallen@enron.com")
    again = run("export", "from:pallen@enron.com", "--to", folder, "--vault", corpus_vault)
    assert again.returncode == 1
    assert b"is not an empty folder" in again.stderr
    other = run("export", "from:nobody@example.org", "--to", tmp_path / "x", "--format",
                "zip", "--vault", corpus_vault)
    assert other.returncode == 1 and b"format is one of eml, mbox" in other.stderr


# The workers build documents the same way for either format (only the writing differs, and
# test_export checks each format's files): eml runs by default, mbox with `-m slow`.
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("fmt", ["eml", pytest.param("mbox", marks=pytest.mark.slow)])
def test_the_files_do_not_depend_on_the_number_of_workers(corpus_vault: Path, tmp_path: Path,
                                                          fmt: str) -> None:
    """Documents are built in worker processes, batches ahead of the writing: one worker or
    three, every file (but the summary's times and its signature) is the same."""
    written = {}
    for workers in ("1", "3"):
        out = tmp_path / f"workers-{workers}"
        done = run("export", "", "--to", out, "--format", fmt, "--vault", corpus_vault,
                   "--json", env={"MAILVAULT_INGEST_WORKERS": workers}, timeout=900)
        assert done.returncode == 0, done.stderr.decode()
        written[workers] = _files(out)
    one, three = written["1"], written["3"]
    assert one.keys() == three.keys()
    assert [name for name in one if name not in UNLISTED and one[name] != three[name]] == []
    # More than one batch: the next is built while the one before is written.
    assert summary(tmp_path / "workers-1")["counts"]["messages"] > BATCH
