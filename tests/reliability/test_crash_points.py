"""Kills at chosen points, for the bugs the random loops found: each child process runs the
real code and SIGKILLs itself (and its workers) at one exact step."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from tests.reliability.invariants import check_vault
from tests.reliability.processes import catalog_scalar
from tests.support import build_message, invoke, write_mbox

# `dispose` killed after its batches are committed, while it compacts the volumes.
DIE_IN_COMPACTION = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from mailvault.compliance import compaction, disposition
    from mailvault.vault import Vault

    def die(*_args, **_kwargs):
        os.killpg(0, signal.SIGKILL)

    compaction.compact = die
    with Vault.open(Path(sys.argv[1])) as vault:
        disposition.dispose(vault, "admin")
""")


def test_a_disposition_killed_midway_is_finished_by_the_next(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    assert invoke("retention", "default", "--period", "1y", "--vault", vault).exit_code == 0
    old = [build_message(subject=f"old {i}", date=datetime(2001, 1, 1, tzinfo=UTC))
           for i in range(12)]
    write_mbox(tmp_path / "old.mbox", old)
    assert invoke("import", tmp_path / "old.mbox", "--vault", vault).exit_code == 0
    child = subprocess.run([sys.executable, "-c", DIE_IN_COMPACTION, str(vault)],
                           start_new_session=True, capture_output=True, timeout=300,
                           check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert catalog_scalar(vault, "select count(*) from tombstones") == 12
    assert catalog_scalar(vault, "select count(*) from disposition_runs "
                          "where state = 'executing'") == 1

    again = invoke("dispose", "--vault", vault, "--json")
    assert again.exit_code == 0, again.text
    assert catalog_scalar(vault, "select count(*) from disposition_runs "
                          "where state = 'executed' and disposed = 12") == 1
    runs = invoke("dispose", "--runs", "--vault", vault, "--json").json()
    assert [r["state"] for r in runs] == ["executed", "executed"]
    facts = check_vault(vault, absent={hashlib.sha256(m).hexdigest() for m in old})
    assert facts.messages == 0
