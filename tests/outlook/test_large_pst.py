"""PSTs larger than the corpus's, written by tests/outlook/pst_writer.py: read the same way
readpst reads them (multi-level B-trees, data trees, tables whose rows live in subnodes),
read in memory that does not grow with the file, and a reading process that dies is one
recorded failure."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailvault.outlook.source import OutlookTally, pst_items
from mailvault.records import Unreadable
from tests.outlook.pst_writer import write_pst
from tests.outlook.readpst_reference import assert_reads_as_readpst

# Enough for 2-level B-trees, bodies in data trees, and a contents table (Archive/2002 holds
# half the messages) whose rows live in a subnode of several blocks.
MESSAGES = 1000


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pst") / "written.pst"
    write_pst(path, MESSAGES)
    return path


def test_a_large_pst_reads_as_readpst_reads_it(written: Path, tmp_path: Path) -> None:
    ours = assert_reads_as_readpst(written, tmp_path, MESSAGES)
    assert sum(len(f.attachments) for f in ours) > MESSAGES // 10


# Both sides measured: the importer's (pst_items, which also bounds what is read ahead) and
# the reading process's (its two steps called in-process, so its peak is this process's).
READ_AND_MEASURE = """
import resource, sys
from pathlib import Path
from mailvault.outlook.source import OutlookTally, _FolderItems, _plan, _read_chunk, pst_items
path = Path(sys.argv[1])
if sys.argv[2] == "importer":
    count = sum(1 for _ in pst_items(path, None, OutlookTally(), lambda size: None))
else:
    count = 0
    for found in _plan(path, None):
        assert isinstance(found, _FolderItems)
        for start in range(0, len(found.nids), 64):
            nids = found.nids[start:start + 64]
            count += len(_read_chunk(path, found.name, found.label, nids).items)
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def read_and_measure(path: Path, side: str) -> tuple[int, int]:
    """(items read, peak resident KiB) of reading a PST in a fresh process, by the importer's
    side or the reading process's."""
    done = subprocess.run([sys.executable, "-c", READ_AND_MEASURE, str(path), side],
                          check=True, capture_output=True, text=True, timeout=1800)
    count, peak_kib = done.stdout.split()
    return int(count), int(peak_kib)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("side", ["importer", "reader"])
def test_memory_does_not_grow_with_the_pst(written: Path, tmp_path: Path, side: str) -> None:
    large = tmp_path / "large.pst"
    write_pst(large, MESSAGES * 20)  # ~350 MB
    small_count, small_peak = read_and_measure(written, side)
    large_count, large_peak = read_and_measure(large, side)
    assert (small_count, large_count) == (MESSAGES, MESSAGES * 20)
    assert large_peak < small_peak + 16 * 1024, (small_peak, large_peak)


def test_a_reading_process_that_dies_is_one_recorded_failure(tmp_path: Path) -> None:
    path = tmp_path / "dies.pst"
    write_pst(path, 2000)  # more chunks than are read ahead: some are asked for after the kill
    tally = OutlookTally()
    before = set(multiprocessing.active_children())
    items = pst_items(path, None, tally, lambda size: None)
    got = [next(items)]
    for process in set(multiprocessing.active_children()) - before:
        os.kill(process.pid, signal.SIGKILL)
    got.extend(items)
    last = got[-1]
    assert isinstance(last, Unreadable)
    assert last.reason.endswith("could not be read to the end: the reading process stopped")
    assert tally.unreadable == 1 and not any(isinstance(i, Unreadable) for i in got[:-1])
    assert len(got) - 1 == sum(tally.archived.values()) < 2000
