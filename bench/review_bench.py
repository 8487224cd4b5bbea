"""A review run over the Enron mailbox of Phillip Allen (`../shared/corpus`): the time of a
first run (scope, three lexicon terms, the sample of every ended week, items written) and of a
second one (nothing new to queue), each in a fresh copy of one imported vault.

    .venv/bin/python bench/review_bench.py --runs 3
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from mailvault.accounts import users  # noqa: E402
from mailvault.accounts.principal import Principal  # noqa: E402
from mailvault.accounts.roles import Role  # noqa: E402
from mailvault.ingest.files import FileOptions, Reader  # noqa: E402
from mailvault.ingest.pipeline import Pipeline  # noqa: E402
from mailvault.usecases import reviewing  # noqa: E402
from mailvault.vault import CATALOG_FILE, Vault  # noqa: E402

ENRON = ROOT.parent / "shared" / "corpus" / "mbox" / "enron-allen-p"
OFFICER = Principal("bench", frozenset({Role.ADMIN}))
TERMS = ("body:california", 'body:"natural gas"', "guarantee*")


def imported(folder: Path) -> Path:
    path = folder / "template"
    vault = Vault.create(path)
    vault.settings.accounts.min_password_length = 8
    users.add_user(vault, "rita", ["reviewer"], [], "a password", "bench")
    with Pipeline(vault, actor="bench") as pipeline:
        pipeline.archive_many(Reader([ENRON], FileOptions()))
    vault.close()
    return path


def one_round(template: Path, to: Path) -> tuple[float, float]:
    shutil.copytree(template, to)
    with sqlite3.connect(to / CATALOG_FILE) as db:
        db.execute("UPDATE volumes SET folder = replace(folder, ?, ?)",
                   (str(template), str(to)))
    vault = Vault.open(to)
    try:
        reviewing.add_policy(vault, OFFICER, reviewing.PolicyDraft(
            name="allen", supervised=("phillip.allen@enron.com",), lexicon=TERMS,
            sample_percent=10, seed=1, reviewers=("rita",)))
        started = time.perf_counter()
        reviewing.run(vault, OFFICER)
        first = time.perf_counter() - started
        started = time.perf_counter()
        reviewing.run(vault, OFFICER)
        return first, time.perf_counter() - started
    finally:
        vault.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="review-bench-") as tmp:
        template = imported(Path(tmp))
        rounds = [one_round(template, Path(tmp) / f"run{n}") for n in range(args.runs)]
    for label, values in (("first run", [r[0] for r in rounds]),
                          ("second run", [r[1] for r in rounds])):
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{label}: {shown} s (median {statistics.median(values):.2f} s)")


if __name__ == "__main__":
    main()
