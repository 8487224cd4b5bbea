"""Deduplication: the same bytes are archived once, the same attachment is stored once."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from tests.core.conftest import CorpusVault
from tests.support import Attachment, build_message, invoke, run, write_eml_folder

ATTACHMENT = random.Random(7).randbytes(96 * 1024)  # incompressible: stored size tells all
COPIES = 6


def stats(vault: Path) -> dict[str, int]:
    result = invoke("stats", "--vault", vault, "--json")
    assert result.exit_code == 0
    data: dict[str, int] = result.json()
    return data


def test_importing_the_corpus_again_adds_nothing(corpus_vault: CorpusVault,
                                                  corpus: Path) -> None:
    before = stats(corpus_vault.path)
    again = run("import", corpus / "eml", corpus / "mbox", corpus / "maildir",
                "--vault", corpus_vault.path)
    assert again.returncode == 0, again.stderr
    arrivals = len(corpus_vault.expected)
    said = " ".join(again.stdout.decode().split())
    assert f"archived 0, already there {arrivals}," in said
    after = stats(corpus_vault.path)
    for key in ("messages", "raw_bytes", "stored_bytes", "arrivals", "parts"):
        assert after[key] == before[key], key
    assert after["arrivals"] == arrivals
    assert after["duplicate_arrivals"] == arrivals - after["messages"]


def shared_attachment_messages(first: int, count: int) -> list[bytes]:
    return [build_message(subject=f"Figures, copy {n}", body=f"Copy number {n}.\n",
                          to=[f"person{n}@example.org"],
                          attachments=[Attachment("figures.bin", ATTACHMENT)])
            for n in range(first, first + count)]


def test_one_attachment_in_many_messages_is_stored_once(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    invoke("init", "--vault", vault)
    messages = shared_attachment_messages(0, COPIES)
    # Two imports: the part is shared within a batch and with what an earlier run stored.
    write_eml_folder(tmp_path / "one", messages[:3])
    write_eml_folder(tmp_path / "two", messages[3:])
    for folder in ("one", "two"):
        result = invoke("import", tmp_path / folder, "--vault", vault, "--json")
        assert result.exit_code == 0 and result.json()["archived"] == 3
    data = stats(vault)
    assert data["messages"] == COPIES
    assert data["raw_bytes"] > COPIES * len(ATTACHMENT)
    assert (data["parts"], data["shared_parts"]) == (1, 1)
    encoded = len(ATTACHMENT) * 4 / 3
    assert (COPIES - 1) * encoded <= data["part_bytes_saved"] <= (COPIES - 1) * encoded * 1.05
    assert data["stored_bytes"] < 1.5 * len(ATTACHMENT), "stored once, not six times"
    text = " ".join(invoke("stats", "--vault", vault).text.split())
    assert re.search(r"1 of 1 attachment parts shared \(\d+(\.\d)? KB saved\)", text), text
    rows = json.loads(invoke("search", "", "--vault", vault, "--json").stdout)
    read_back = {invoke("get", str(r["id"]), "--raw", "--vault", vault).stdout for r in rows}
    assert read_back == set(messages)
