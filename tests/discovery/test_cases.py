"""Cases: custodians, saved queries with counts, holds placed from a case, notes, exports,
closing (holds stay), and the chain of custody read back from the audit log."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.errors import InputError
from mailvault.usecases import cases, exporting, holds
from mailvault.vault import Vault
from tests.support import build_message
from tests.usecases.conftest import archive, file_arrival, journal_arrival

WHO = local_operator("investigator")


@pytest.fixture
def mail(vault: Vault) -> None:
    archive(vault, [
        (build_message(subject="price list", sender="alice@example.org",
                       to=("bob@example.org",)), file_arrival("1")),
        (build_message(subject="the deal", sender="carol@example.org",
                       to=("dave@example.org",)),
         journal_arrival("dave@example.org", "alice@example.org",
                         sender="carol@example.org")),
        (build_message(subject="lunch", sender="erin@example.org",
                       to=("frank@example.org",)), file_arrival("3")),
    ])


def test_a_case_from_opening_to_closing(vault: Vault, mail: None, tmp_path: Path) -> None:
    cases.create_case(vault, WHO, "Acme v. Example", "price fixing")
    cases.add_custodian(vault, WHO, "Acme v. Example", "Alice@Example.org")
    cases.add_query(vault, WHO, "Acme v. Example", "deals", "subject:deal OR subject:price")
    cases.add_note(vault, WHO, "Acme v. Example", "custodian interview on Monday")
    placed = cases.place_hold(vault, WHO, "Acme v. Example", "acme-alice", reason="subpoena",
                              owner="legal", custodian="alice@example.org")
    # Alice is party to two messages: one by the headers, one only by the journal envelope.
    assert placed.messages == 2
    job = exporting.start_export(vault, WHO, "subject:deal", tmp_path / "out",
                                 case="Acme v. Example")
    exporting.run_export(vault, WHO, job.id)
    view = cases.show_case(vault, WHO, "Acme v. Example")
    assert [(i.value, n) for i, n in view.custodians] == [("alice@example.org", 2)]
    assert [(i.name, n) for i, n in view.queries] == [("deals", 2)]
    assert [h.hold.name for h in view.holds] == ["acme-alice"]
    assert [n.value for n in view.notes] == ["custodian interview on Monday"]
    assert [(e.state, e.total) for e in view.exports] == [("done", 1)]
    closed = cases.close_case(vault, WHO, "Acme v. Example", "settled")
    assert closed.state == "closed"
    assert [h.hold.name for h in holds.list_holds(vault, WHO)] == ["acme-alice"]
    with pytest.raises(InputError, match="is closed"):
        cases.add_note(vault, WHO, "Acme v. Example", "too late")
    holds.release_hold(vault, WHO, "acme-alice", "matter over")
    custody = cases.show_case(vault, WHO, "Acme v. Example").custody
    assert [e.action for e in custody] == [
        "case-create", "case-custodian", "case-query", "case-note", "hold-place",
        "case-hold", "export-start", "export-finish", "case-view", "case-close",
        "hold-release"]
    assert all(e.actor == WHO.name for e in custody)
    assert all(e.detail.get("case") == view.case.id for e in custody
               if e.action != "hold-release")


def test_case_names_and_exports_by_custodian(vault: Vault, mail: None, tmp_path: Path) -> None:
    cases.create_case(vault, WHO, "matter")
    with pytest.raises(InputError, match="exists already"):
        cases.create_case(vault, WHO, " matter ")
    with pytest.raises(InputError, match="needs --case with custodians"):
        exporting.start_export(vault, WHO, "", tmp_path / "a", case="matter",
                               layout="custodian")
    cases.add_custodian(vault, WHO, "matter", "dave@example.org")
    cases.add_custodian(vault, WHO, "matter", "alice@example.org")
    job = exporting.start_export(vault, WHO, "", tmp_path / "b", case="matter",
                                 layout="custodian")
    exporting.run_export(vault, WHO, job.id)
    natives = sorted(p.relative_to(tmp_path / "b" / "natives").parent.as_posix()
                     for p in (tmp_path / "b" / "natives").rglob("*.eml"))
    assert natives == ["_others", "alice@example.org", "dave@example.org"]


def test_one_job_runs_in_one_process_at_a_time(vault: Vault, mail: None,
                                               tmp_path: Path) -> None:
    job = exporting.start_export(vault, WHO, "", tmp_path / "out")
    lock = vault.path / "locks" / f"export-{job.id}.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InputError, match="running in another process"):
            exporting.run_export(vault, WHO, job.id)
    assert exporting.run_export(vault, WHO, job.id).counts["exported"] == 3
