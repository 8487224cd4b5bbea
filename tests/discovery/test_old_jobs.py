"""An export job checkpointed by the development versions before batch checkpoints (one
record a message, no manifest ends) is refused with one sentence, nothing written: this
version cannot go on from its files (the path that read such records was removed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailvault.discovery import export, jobs
from mailvault.errors import InputError
from mailvault.ingest.pipeline import Outcome, Pipeline
from mailvault.records import Incoming, Provenance
from mailvault.vault import Vault
from tests.support import build_message


def _archived(vault: Vault, count: int) -> list[int]:
    outcomes: list[Outcome] = []
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        pipeline.archive_many([Incoming(build_message(subject=f"message {n}"),
                                        Provenance(kind="file", source="test",
                                                   folder="INBOX", item=str(n)))
                               for n in range(count)], on_batch=outcomes.extend)
    return [o.message_id for o in outcomes if o.message_id is not None]


def test_a_job_with_one_record_a_message_is_refused(vault: Vault, tmp_path: Path) -> None:
    ids = _archived(vault, 2)
    dest = tmp_path / "out"
    job = jobs.create(vault, case_id=None, query="", fmt="eml", layout="folder",
                      zip_it=False, dest=dest, actor="test", ids=ids)
    # What those versions checkpointed for a message: its documents and files, no ends.
    old = {"error": None, "documents": [{"control": "MV00000001", "id": ids[0],
                                         "sha256": "ab" * 32}],
           "files": [["natives/INBOX/MV00000001.eml", "ab" * 32, 10]],
           "mbox": None, "mbox_changed": False}
    job = jobs.checkpoint(vault, job, ids[0], 1, old, 0)
    with pytest.raises(InputError, match="begun by an earlier version"):
        export.run(vault, job, case_name=None, custodians=[])
    assert jobs.get(vault, job.id).done == 1
    assert list(dest.iterdir()) == []
