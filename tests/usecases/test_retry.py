"""Retrying a recorded failure: an index failure indexes the message again, a file failure
reads the file again (and a second failure replaces the first), kinds that cannot be reached
again are refused in one sentence; each retry is audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailvault.accounts.principal import Principal, local_operator
from mailvault.accounts.roles import Role
from mailvault.errors import InputError, NotFoundError, PermissionDenied
from mailvault.records import Provenance
from mailvault.store import audit, catalog
from mailvault.usecases import finding, importing, monitoring
from mailvault.vault import Vault
from tests.support import build_message

OPERATOR = local_operator("ops")


def _large(subject: str, megabytes: float) -> bytes:
    return build_message(subject=subject,
                         body=("y" * 76 + "\n") * int(megabytes * 1024 * 1024 / 77))


def _import(vault: Vault, *paths: Path) -> importing.ImportResult:
    return importing.import_files(vault, OPERATOR, importing.plan_import(list(paths)))


def _retries(vault: Vault) -> list[dict[str, object]]:
    with vault.engine.connect() as conn:
        return [e.detail for e in audit.entries(conn) if e.action == "failure-retry"]


def test_a_file_refused_as_too_large_is_archived_when_retried(vault: Vault,
                                                              tmp_path: Path) -> None:
    vault.settings.ingest.workers = 1
    vault.settings.ingest.max_message_mb = 1
    big = tmp_path / "big.eml"
    big.write_bytes(_large("the large report", 1.2))
    assert _import(vault, big).report.refused == 1
    [failure] = monitoring.failures(vault, OPERATOR)
    assert (failure.kind, failure.item, failure.retry_refusal) == ("eml", str(big), None)

    again = monitoring.retry_failure(vault, OPERATOR, failure.id)
    assert again.outcome == monitoring.FAILED_AGAIN
    assert again.newer_failure is not None and "too large" in again.sentence
    # The second failure replaces the first: the list shows the problem once.
    [newer] = monitoring.failures(vault, OPERATOR)
    assert newer.id == again.newer_failure

    vault.settings.ingest.max_message_mb = 2
    settled = monitoring.retry_failure(vault, OPERATOR, newer.id)
    assert (settled.outcome, settled.archived) == (monitoring.SETTLED, 1)
    assert monitoring.failures(vault, OPERATOR) == []
    assert finding.count(vault, OPERATOR, "subject:report") == 1
    # Retrying the same file again adds no second arrival: the recorded provenance is reused.
    with vault.engine.connect() as conn:
        row = catalog.resolve(conn, "1")
        assert len(catalog.provenances(conn, row.id)) == 1
    assert [(d["failure"], d["outcome"]) for d in _retries(vault)] == [
        (failure.id, "failed again"), (newer.id, "settled")]
    with pytest.raises(InputError, match="settled already"):
        monitoring.retry_failure(vault, OPERATOR, newer.id)


def test_an_mbox_read_again_files_the_message_in_its_folder(vault: Vault,
                                                            tmp_path: Path) -> None:
    vault.settings.ingest.workers = 1
    vault.settings.ingest.max_message_mb = 1
    small = build_message(subject="small one")
    mbox = tmp_path / "Projects.mbox"
    mbox.write_bytes(b"From a@b Mon Jan  1 00:00:00 2024\n" + small + b"\n"
                     + b"From a@b Mon Jan  1 00:00:00 2024\n" + _large("big one", 1.2))
    _import(vault, mbox)
    [failure] = monitoring.failures(vault, OPERATOR)
    assert (failure.kind, failure.provenance.folder) == ("mbox", "Projects")
    vault.settings.ingest.max_message_mb = 2
    retried = monitoring.retry_failure(vault, OPERATOR, failure.id)
    assert (retried.outcome, retried.archived, retried.duplicates) == (monitoring.SETTLED, 1, 1)
    assert finding.count(vault, OPERATOR, "folder:Projects") == 2


def test_an_index_failure_is_indexed_again(vault: Vault, mail: dict[str, int]) -> None:
    with vault.engine.begin() as conn:
        row = catalog.resolve(conn, str(mail["to_bob"]))
        # As the pipeline records a document the index would not take.
        catalog.record_index_failures(conn, {row.id: (row.sha256, "a Rust panic")})
        catalog.record_index_failures(conn, {999: ("ab" * 32, "a Rust panic")})
    gone, present = monitoring.failures(vault, OPERATOR)
    assert present.kind == "index" and present.item == row.sha256

    indexed = monitoring.retry_failure(vault, OPERATOR, present.id)
    assert indexed.outcome == monitoring.SETTLED
    assert indexed.sentence == f"message {row.id} is searchable now."
    disposed = monitoring.retry_failure(vault, OPERATOR, gone.id)
    assert disposed.outcome == monitoring.SETTLED
    assert "no longer in the archive" in disposed.sentence
    assert monitoring.failures(vault, OPERATOR) == []


@pytest.mark.parametrize(("kind", "words"), [
    ("smtp", "its sender must send it again"),
    ("maildir", "import the Maildir tree again"),
    ("pst", "import the PST or OST file again"),
    ("gateway", "a gateway message that failed stays in its mailbox"),
    ("fax", "mailvault cannot reach a fax item again"),
])
def test_kinds_that_cannot_be_reached_again_are_refused(vault: Vault, kind: str,
                                                        words: str) -> None:
    with vault.engine.begin() as conn:
        catalog.record_failure(conn, Provenance(kind=kind, source="somewhere", item="1"),
                               "it was refused")
    [failure] = monitoring.failures(vault, OPERATOR)
    assert failure.to_json()["retryable"] is False
    with pytest.raises(InputError) as refused:
        monitoring.retry_failure(vault, OPERATOR, failure.id)
    assert str(refused.value).startswith(f"failure {failure.id} cannot be retried: ")
    assert words in str(refused.value)
    assert _retries(vault) == []


def test_retrying_needs_the_sources_permission(vault: Vault) -> None:
    with vault.engine.begin() as conn:
        catalog.record_failure(conn, Provenance(kind="eml", source="/x.eml", item="/x.eml"),
                               "unreadable")
    monitor = Principal("mona", frozenset({Role.AUDITOR}))
    with pytest.raises(PermissionDenied):
        monitoring.retry_failure(vault, monitor, 1)
    with pytest.raises(NotFoundError, match="there is no failure 42"):
        monitoring.retry_failure(vault, OPERATOR, 42)
    with pytest.raises(InputError, match="does not exist"):
        monitoring.retry_failure(vault, OPERATOR, 1)
