"""Every message of the corpus comes back byte-exact, and the counts are right.

What an import must archive is read independently (tests/core/corpus_reading.py): eml files
whole, mbox files split by Python's ``mailbox`` with >From unquoted, Maildir files whole.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mailvault.store import catalog
from mailvault.vault import Vault
from tests.core.conftest import CorpusVault
from tests.core.corpus_reading import mbox_messages
from tests.support import count, invoke, run, search_json

ENRON_FILES = 10
ENRON_MESSAGES = 3034
CONTRACT_FIELDS = {"id", "sha256", "date", "from", "to", "cc", "subject", "folder", "tier",
                   "size"}


def test_enron_count_read_independently(corpus: Path) -> None:
    boxes = sorted((corpus / "mbox" / "enron-allen-p").glob("*.mbox"))
    assert len(boxes) == ENRON_FILES
    assert sum(len(mbox_messages(b)) for b in boxes) == ENRON_MESSAGES


def test_the_archive_holds_exactly_the_corpus(corpus_vault: CorpusVault) -> None:
    rows = search_json(corpus_vault.path, "")
    unique = corpus_vault.by_sha
    assert sorted(r["sha256"] for r in rows) == sorted(unique)
    assert count(corpus_vault.path, "") == len(unique)
    summary = corpus_vault.summary
    assert summary["archived"] == len(unique)
    assert summary["duplicates"] == len(corpus_vault.expected) - len(unique)
    assert summary["refused"] == 0


def test_every_message_reads_back_byte_exact(corpus_vault: CorpusVault) -> None:
    expected = corpus_vault.by_sha
    checked = 0
    with Vault.open(corpus_vault.path) as vault, vault.engine.connect() as conn:
        for row in catalog.iter_messages(conn):
            assert vault.read_raw(row) == expected[row.sha256].raw, expected[row.sha256].path
            assert row.size == len(expected[row.sha256].raw)
            checked += 1
    assert checked == len(expected)


def test_get_raw_returns_the_bytes_of_each_kind(corpus_vault: CorpusVault,
                                                tmp_path: Path) -> None:
    """The command itself, on a sample of every shape: CRLF, >From-quoted mbox lines, a
    message cut into parts (large attachment), the first and last of an mbox."""
    expected = corpus_vault.expected
    picks = {
        "crlf": next(m for m in expected if b"\r\n" in m.raw),
        "quoted": next(m for m in expected if m.path.suffix == ".mbox"
                       and b"\n>From " not in m.raw and b"\nFrom " in m.raw),
        "large": max(expected, key=lambda m: len(m.raw)),
        "mbox first": next(m for m in expected if m.path.name == "inbox.mbox"),
        "mbox last": [m for m in expected if m.path.name == "inbox.mbox"][-1],
        "maildir": next(m for m in expected if m.path.parent.name == "new"),
        "non-ascii": next(m for m in expected if "cjk" in m.path.parts),
    }
    for label, message in picks.items():
        out = tmp_path / f"{message.sha256}.eml"
        result = run("get", message.sha256[:16], "--raw", "-o", out, "--vault",
                     corpus_vault.path)
        assert result.returncode == 0, (label, result.stderr)
        assert out.read_bytes() == message.raw, label
    to_stdout = invoke("get", picks["quoted"].sha256, "--raw", "--vault", corpus_vault.path)
    assert to_stdout.stdout == picks["quoted"].raw


def test_enron_counts_per_file(corpus_vault: CorpusVault, corpus: Path) -> None:
    """Each Enron mbox file's messages are found by its source and its folder."""
    per_file = {box: len(mbox_messages(box))
                for box in sorted((corpus / "mbox" / "enron-allen-p").glob("*.mbox"))}
    for box, expected in per_file.items():
        assert count(corpus_vault.path, f'source:"enron-allen-p/{box.name}"') == expected
    assert sum(per_file.values()) == ENRON_MESSAGES
    rows = search_json(corpus_vault.path, 'source:"enron-allen-p"')
    assert len(rows) == ENRON_MESSAGES
    # An mbox file is one mail folder, named by the file (inside the folder imported).
    assert Counter(r["folder"] for r in rows) == {
        f"mbox/enron-allen-p/{box.stem}": n for box, n in per_file.items()}


def test_maildir_folders_are_kept(corpus_vault: CorpusVault, corpus: Path) -> None:
    """Each Maildir folder's messages carry that folder's name (mu's testdir2 tree)."""
    for name in ("Foo", "bar", "wom_bat"):
        directory = corpus / "maildir" / "mu" / "testdir2" / name
        files = {p.read_bytes() for sub in ("cur", "new") for p in (directory / sub).glob("*")
                 if not p.name.startswith(".")}
        rows = search_json(corpus_vault.path, f'folder:"testdir2/{name}"')
        assert {r["folder"] for r in rows} <= {f"maildir/mu/testdir2/{name}"}
        archived = {corpus_vault.by_sha[r["sha256"]].raw for r in rows}
        assert files <= archived


def test_search_json_fields(corpus_vault: CorpusVault) -> None:
    rows = search_json(corpus_vault.path, "", limit=5)
    assert len(rows) == 5
    for row in rows:
        assert row.keys() >= CONTRACT_FIELDS
        assert isinstance(row["id"], int) and isinstance(row["size"], int)
        assert len(row["sha256"]) == 64 and row["tier"] == "active"
    dates = [r["date"] for r in rows]
    assert dates == sorted(dates, reverse=True), "newest first"


def test_duplicates_across_sources_are_one_message(corpus_vault: CorpusVault) -> None:
    arrivals = Counter(m.sha256 for m in corpus_vault.expected)
    repeated = [sha for sha, n in arrivals.items() if n > 1]
    assert repeated, "the corpus has byte-identical copies (notmuch's duplicate folder)"
    archived = Counter(r["sha256"] for r in search_json(corpus_vault.path, ""))
    assert all(archived[sha] == 1 for sha in repeated)
