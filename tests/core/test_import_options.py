"""``mailvault import`` options: --since/--before, --folder, --format; parse defects counted."""

from __future__ import annotations

import email
import email.policy
import email.utils
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.core.conftest import CorpusVault
from tests.core.corpus_reading import mbox_messages
from tests.support import build_message, invoke, search_json, write_mbox

SINCE, BEFORE = datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 2, 1, tzinfo=UTC)


def dated(raw: bytes) -> datetime | None:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if msg.get("date") is None:
        return None
    when = email.utils.parsedate_to_datetime(str(msg["date"]))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    invoke("init", "--vault", path)
    return path


def test_since_and_before(vault: Path, corpus: Path) -> None:
    box = corpus / "mbox" / "enron-allen-p" / "sent.mbox"
    messages = mbox_messages(box)
    inside = {m.sha256 for m in messages
              if (d := dated(m.raw)) is None or SINCE <= d < BEFORE}
    assert 0 < len(inside) < len(messages)
    result = invoke("import", box, "--since", "2001-01-01", "--before", "2001-02-01",
                    "--vault", vault, "--json")
    assert result.exit_code == 0
    summary = result.json()
    assert summary["archived"] == len(inside)
    assert summary["outside_date_range"] == len(messages) - len(inside)
    assert {r["sha256"] for r in search_json(vault, "")} == inside


def test_folder_and_format(vault: Path, tmp_path: Path) -> None:
    """--format mbox reads a file whose name says nothing; --folder names the folder."""
    odd = tmp_path / "export.dat"
    messages = [build_message(subject=f"Exported {n}") for n in range(3)]
    write_mbox(odd, messages)
    result = invoke("import", odd, "--format", "mbox", "--folder", "Legal/Hold 7",
                    "--vault", vault, "--json")
    assert result.exit_code == 0 and result.json()["archived"] == 3
    rows = search_json(vault, 'folder:"Legal/Hold 7"')
    assert {r["folder"] for r in rows} == {"Legal/Hold 7"} and len(rows) == 3
    assert {invoke("get", str(r["id"]), "--raw", "--vault", vault).stdout
            for r in rows} == set(messages)


def test_malformed_mail_is_archived_with_its_defects(corpus_vault: CorpusVault) -> None:
    """Broken messages are archived (never refused) and their defects are counted."""
    assert corpus_vault.summary["with_defects"] > 0
    rows = search_json(corpus_vault.path, "")
    with_defects = [r for r in rows if r["defects"]]
    assert len(with_defects) == corpus_vault.summary["with_defects"]
