"""A disposal batch killed between each of its steps (and the heal that finishes it killed
again), then `dispose` run again: every invariant of ``check_vault`` must hold, above all
that the index holds no document of a disposed message.

The steps of one batch, in order: the catalog transaction (tombstones, rows deleted, ids
logged for the index), the heal (index deletes, index commit, the index's marker, its cursor
over the reindex log recorded), compaction, the report, the run marked executed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailvault.search.index import SearchIndex
from tests.reliability.invariants import check_vault
from tests.reliability.processes import catalog_scalar
from tests.support import build_message, catalog_sql, copy_vault, invoke, write_mbox

OLD = datetime(2001, 5, 6, 7, 8, tzinfo=UTC)
NEW = datetime.now(UTC)
ROUNDS = 3
EXPIRED = 12
CURRENT = 3
ROOT = Path(__file__).resolve().parents[2]

DISPOSITION = "mailvault.compliance.disposition"
INDEX = "mailvault.search.index:SearchIndex"
# Vault.heal_index: the first call is the open's heal, the second the batch's.
BATCH_HEAL = "mailvault.vault:Vault.heal_index"

# name -> (step, when, nth call): where the killed `dispose` stops.
POINTS = {
    "batch-uncommitted": (f"{DISPOSITION}:_delete", "after", 1),
    "catalog-committed": (BATCH_HEAL, "before", 2),
    "index-deleted-uncommitted": (f"{INDEX}.delete", "after", 1),
    "index-committed-no-marker": (f"{INDEX}._write_marker", "before", 1),
    "marker-written-cursor-not-recorded": (f"{INDEX}.commit", "after", 1),
    "healed": (BATCH_HEAL, "after", 2),
    "compacted": ("mailvault.compliance.compaction:compact", "after", 1),
    "reported": (f"{DISPOSITION}:_write_report", "after", 1),
}
# Where the heal of the next command (its open) is killed in turn, after a kill that left
# the batch's ids logged.
HEAL_POINTS = {
    "heal-deleted-uncommitted": (f"{INDEX}.delete", "after", 1),
    "heal-committed-no-marker": (f"{INDEX}._write_marker", "before", 1),
    "heal-marker-written-cursor-not-recorded": (f"{INDEX}.commit", "after", 1),
}


# One kill point of each kind runs by default (the catalog transaction, the index's commit,
# the steps after the heal; the heal killed in turn inside the index's commit); the others,
# neighbours of these, run with `-m slow`.
DEFAULT_POINTS = {"batch-uncommitted", "index-committed-no-marker", "compacted"}
DEFAULT_HEAL_POINTS = {"heal-committed-no-marker"}


def cases(points: dict[str, tuple[str, str, int]], default: set[str]) -> list[object]:
    """The points' names as parameters, those outside ``default`` marked slow."""
    return [name if name in default else pytest.param(name, marks=pytest.mark.slow)
            for name in sorted(points)]


def digests(messages: list[bytes]) -> set[str]:
    return {hashlib.sha256(m).hexdigest() for m in messages}


def round_messages(number: int) -> tuple[list[bytes], list[bytes]]:
    """(expired, current) messages of one round."""
    expired = [build_message(subject=f"expired {number} {i}", date=OLD,
                             body=f"expired {number} {i}\n" + "filler\n" * i)
               for i in range(EXPIRED)]
    current = [build_message(subject=f"current {number} {i}", date=NEW)
               for i in range(CURRENT)]
    return expired, current


def die_at(vault: Path, point: tuple[str, str, int], *command: str) -> int:
    """Run ``mailvault COMMAND --vault VAULT``, SIGKILLed at ``point``; its exit status."""
    step, when, nth = point
    child = subprocess.run(
        [sys.executable, "-m", "tests.reliability.die_at", step, when, str(nth), "--",
         *command, "--vault", str(vault)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        capture_output=True, timeout=300, check=False)
    return child.returncode


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], set[str]]:
    """A vault that has disposed of ``ROUNDS - 1`` rounds (segments with deletions behind
    it) and holds a new round's expired messages: (vault, current, expired)."""
    folder = tmp_path_factory.mktemp("disposal")
    vault = folder / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    assert invoke("retention", "default", "--period", "1y", "--vault", vault).exit_code == 0
    kept: set[str] = set()
    expired: set[str] = set()
    for number in range(ROUNDS):
        old, new = round_messages(number)
        write_mbox(folder / f"round-{number}.mbox", old + new)
        assert invoke("import", folder / f"round-{number}.mbox", "--vault",
                      vault).exit_code == 0
        kept |= digests(new)
        expired |= digests(old)
        if number < ROUNDS - 1:
            assert invoke("dispose", "--vault", vault).exit_code == 0
    return vault, kept, expired


def copy_of(template: tuple[Path, set[str], set[str]], tmp_path: Path) -> Path:
    """A copy of the template vault whose volumes are its own (the catalog names each
    volume's folder)."""
    return copy_vault(template[0], tmp_path / "vault")


def dispose_again_and_check(vault: Path, template: tuple[Path, set[str], set[str]]) -> None:
    again = invoke("dispose", "--vault", vault, "--json")
    assert again.exit_code == 0, again.text
    facts = check_vault(vault, present=template[1], absent=template[2])
    assert facts.messages == len(template[1])
    assert template[2] <= facts.tombstones


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", cases(POINTS, DEFAULT_POINTS))
def test_a_disposal_killed_at_each_step_is_finished_by_the_next(
        tmp_path: Path, template: tuple[Path, set[str], set[str]], name: str) -> None:
    vault = copy_of(template, tmp_path)
    assert die_at(vault, POINTS[name], "dispose") == -9, f"`dispose` never reached {name}"
    dispose_again_and_check(vault, template)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", cases(HEAL_POINTS, DEFAULT_HEAL_POINTS))
def test_the_heal_that_finishes_a_killed_disposal_killed_in_turn(
        tmp_path: Path, template: tuple[Path, set[str], set[str]], name: str) -> None:
    vault = copy_of(template, tmp_path)
    assert die_at(vault, POINTS["catalog-committed"], "dispose") == -9
    assert catalog_scalar(vault, "select count(*) from reindex_log") == EXPIRED
    # Any command's open heals: `status` is the lightest.
    assert die_at(vault, HEAL_POINTS[name], "status") == -9, f"the heal never reached {name}"
    dispose_again_and_check(vault, template)


def leave_a_commit_killed_inside_tantivy(vault: Path, scratch: Path) -> list[str]:
    """Leave in the vault's index what a heal killed inside Tantivy's commit of the logged
    deletions leaves: their deletion files written (and registered in ``.managed.json``, as
    Tantivy does before it writes a file), meta.json not yet replaced. Made by doing the
    same deletions, in the same order, on a copy of the index (same segments, same opstamp
    to start from, so the same file names); returns the files left."""
    index = vault / "index"
    shutil.copytree(index, scratch)
    queued = [row[0] for row in catalog_sql(
        vault, "select message_id from reindex_log order by seq")]
    copy = SearchIndex(scratch)
    copy.delete(queued)
    copy.commit()
    copy.close()
    left = sorted({p.name for p in scratch.glob("*.del")} - {p.name for p in index.glob("*.del")})
    for name in left:
        shutil.copy2(scratch / name, index / name)
    managed = index / ".managed.json"
    managed.write_text(json.dumps(sorted({*json.loads(managed.read_text()), *left})))
    return left


@pytest.mark.timeout(300)
def test_a_heal_killed_inside_the_index_commit_does_not_stop_the_next(
        tmp_path: Path, template: tuple[Path, set[str], set[str]]) -> None:
    """The 50-kill loop's failure: the next writer met the killed one's deletion file
    (``FileAlreadyExists``), every heal failed, and the documents of the disposed messages
    stayed in the index with their deletions logged."""
    vault = copy_of(template, tmp_path)
    assert die_at(vault, POINTS["catalog-committed"], "dispose") == -9
    assert leave_a_commit_killed_inside_tantivy(vault, tmp_path / "scratch")
    dispose_again_and_check(vault, template)
