"""A tier move killed with SIGKILL half-way: every message stays readable from exactly one
tier, nothing is counted twice, and ``tier resume`` finishes the job."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mailvault.compliance.verify import verify
from mailvault.store import catalog
from mailvault.vault import Vault
from tests.compliance.conftest import ENRON_MESSAGES
from tests.support import MAILVAULT, catalog_sql, run


def tier_counts(path: Path) -> dict[str, int]:
    return dict(catalog_sql(path, "SELECT tier, count(*) FROM messages GROUP BY tier"))


def kill_mid_move(path: Path, target: str, after: int) -> dict[str, int]:
    """Start a move, SIGKILL it once ``after`` messages reached the target; the counts then."""
    env = {**os.environ, "MAILVAULT_TIERS_MOVE_BATCH": "50", "MAILVAULT_TIERS_DEEP_CHUNK_MB": "1"}
    process = subprocess.Popen([*MAILVAULT, "tier", "move", "", "--to", target, "--vault",
                                str(path)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if tier_counts(path).get(target, 0) >= after:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return tier_counts(path)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["open", "deep"])
def test_killed_move_resumes_and_loses_nothing(enron_path: Path, target: str) -> None:
    with Vault.open(enron_path) as vault, vault.engine.connect() as conn:
        hashes = {row.sha256 for row in catalog.iter_messages(conn)}
    counts = kill_mid_move(enron_path, target, after=300)
    assert 0 < counts.get(target, 0) < ENRON_MESSAGES, "the move was not killed half-way"
    assert sum(counts.values()) == ENRON_MESSAGES
    with Vault.open(enron_path) as vault, vault.engine.connect() as conn:
        for row in catalog.iter_messages(conn):
            assert hashlib.sha256(vault.read_raw(row)).hexdigest() == row.sha256
    resumed = run("tier", "resume", "--vault", enron_path, "--json")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert tier_counts(enron_path) == {target: ENRON_MESSAGES}
    with Vault.open(enron_path) as vault:
        with vault.engine.connect() as conn:
            assert {row.sha256 for row in catalog.iter_messages(conn)} == hashes
        assert vault.index.doc_count() == ENRON_MESSAGES
        report = verify(vault, "test")
        assert report.ok, report.problems
