"""The index is derived (``reindex`` rebuilds it to the same answers), and every human action
is in the hash-chained audit log."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from mailvault.search import indexing
from tests.support import (
    Attachment,
    build_message,
    catalog_sql,
    docx_with_text,
    invoke,
    search_json,
    write_mbox,
)

QUERIES = ["", "subject:invoice", "attachment:wombat", "from:alice", "after:2021-03-01",
           "has:attachment", "folder:archive", "-subject:invoice", "inv*"]


@pytest.fixture
def vault(tmp_path: Path, corpus: Path) -> Path:
    """Real Enron mail (one mbox) plus built messages with a DOCX attachment."""
    path = tmp_path / "vault"
    invoke("init", "--vault", path)
    built = [build_message(subject=f"Invoice {n}", sender="alice@example.org",
                           attachments=[Attachment("terms.docx", docx_with_text(f"wombat {n}"),
                                                   "application/vnd.openxmlformats-"
                                                   "officedocument.wordprocessingml.document")])
             for n in range(4)]
    write_mbox(tmp_path / "archive.mbox", built)
    env = {"MAILVAULT_ACTOR": "auditor@example.org"}
    for source in (corpus / "mbox" / "enron-allen-p" / "inbox.mbox", tmp_path / "archive.mbox"):
        assert invoke("import", source, "--vault", path, env=env).exit_code == 0
    return path


def answers(vault: Path) -> dict[str, list[str]]:
    return {q: [r["sha256"] for r in search_json(vault, q)] for q in QUERIES}


def test_reindex_gives_the_same_answers(vault: Path) -> None:
    before = answers(vault)
    assert all(before[q] for q in QUERIES), "each query finds something"
    assert len(before["attachment:wombat"]) == 4
    result = invoke("reindex", "--vault", vault)
    assert result.exit_code == 0
    assert f"reindexed {len(before[''])} messages" in result.text
    assert answers(vault) == before


def test_reindex_in_worker_processes_gives_the_same_answers(
        vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = answers(vault)
    started = []
    monkeypatch.setattr(indexing, "PARALLEL_FROM", 1)  # parse in workers from one message
    monkeypatch.setattr(indexing, "ProcessPoolExecutor",
                        lambda *a, **k: started.append(1) or ProcessPoolExecutor(*a, **k))
    monkeypatch.setenv("MAILVAULT_INGEST_WORKERS", "2")
    assert invoke("reindex", "--vault", vault).exit_code == 0
    assert started
    assert answers(vault) == before


def test_reindex_after_the_index_is_lost(vault: Path) -> None:
    before = answers(vault)
    for path in sorted((vault / "index").glob("*"), reverse=True):
        if path.is_file():
            path.unlink()
    assert invoke("reindex", "--vault", vault).exit_code == 0
    assert answers(vault) == before


def actions(vault: Path) -> list[dict[str, object]]:
    result = invoke("audit", "log", "--vault", vault, "--json")
    assert result.exit_code == 0
    entries: list[dict[str, object]] = result.json()
    return entries


def test_the_audit_log_records_human_actions(vault: Path, tmp_path: Path) -> None:
    env = {"MAILVAULT_ACTOR": "auditor@example.org"}
    invoke("search", "subject:invoice", "--vault", vault, env=env)
    invoke("count", "from:alice", "--vault", vault, env=env)
    first = search_json(vault, "subject:invoice")[0]
    invoke("show", str(first["id"]), "--vault", vault, env=env)
    invoke("get", str(first["id"]), "--raw", "-o", tmp_path / "out.eml", "--vault", vault,
           env=env)
    entries = actions(vault)
    mine = [e for e in entries if e["actor"] == "auditor@example.org"]
    by_action = {e["action"]: e["detail"] for e in mine}
    assert {"ingest", "search", "count", "view", "download"} <= by_action.keys()
    assert by_action["search"]["query"] == "subject:invoice"  # type: ignore[index]
    assert by_action["view"]["message"] == first["id"]  # type: ignore[index]
    assert by_action["download"]["sha256"] == first["sha256"]  # type: ignore[index]
    assert sum(e["detail"]["archived"] for e in mine  # type: ignore[index,misc]
               if e["action"] == "ingest") == len(search_json(vault, ""))
    # The reading above is in the log now; this one is recorded after it is shown.
    reading = [e for e in actions(vault) if e["action"] == "audit read"]
    assert [e["detail"] for e in reading] == [{"since": None, "entries": len(entries)}]
    verified = invoke("audit", "verify", "--vault", vault)
    assert verified.exit_code == 0
    assert "the audit chain is intact" in verified.text


def test_an_edited_audit_entry_is_detected(vault: Path) -> None:
    invoke("search", "wombat", "--vault", vault)
    entries = actions(vault)
    target = next(e for e in entries if e["action"] == "search")
    catalog_sql(vault, "update audit_log set detail = ? where seq = ?",
                '{"query":"something else"}', target["seq"])
    result = invoke("audit", "verify", "--vault", vault, "--json")
    assert result.exit_code == 1
    assert result.json()["problems"] == [f"audit entry {target['seq']} was altered after it "
                                         "was written."]
