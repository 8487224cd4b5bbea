"""Exports of real mail: byte-exact natives, the mbox round trip, the Concordance load file,
the signed summary and what ``verify --export`` catches."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.discovery import loadfile
from mailvault.usecases import finding
from mailvault.vault import Vault
from tests.discovery.conftest import export, manifest, summary
from tests.support import run, search_json

OPERATOR = local_operator("test")


@pytest.fixture(scope="module")
def eml_export(corpus_vault: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eml-export") / "out"
    result = export(corpus_vault, folder, "")
    assert result["counts"]["errors"] == 0
    return folder


@pytest.mark.timeout(900)  # the module's export is made here, on a machine others load
def test_every_message_is_exported_byte_exact(corpus_vault: Path, eml_export: Path) -> None:
    archived = search_json(corpus_vault, "")
    rows = [r for r in manifest(eml_export) if r["type"] == "message"]
    assert sorted(r["id"] for r in rows) == sorted(m["id"] for m in archived)
    assert {m["tier"] for m in archived} >= {"active", "deep"}
    with Vault.open(corpus_vault) as vault:
        for row in rows:
            _row, raw = finding.raw_message(vault, OPERATOR, str(row["id"]), "test")
            exported = (eml_export / row["path"]).read_bytes()
            assert exported == raw, row["path"]
            assert hashlib.sha256(exported).hexdigest() == row["sha256"]
            assert row["path"].startswith("natives/") and row["path"].endswith(".eml")


def test_the_load_file_has_one_row_per_document(eml_export: Path) -> None:
    data = (eml_export / "loadfile.dat").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert "\u00fe\x14\u00fe".encode() in data.split(b"\r\n", 1)[0]
    rows = list(loadfile.parse(data))
    documents = manifest(eml_export)
    assert [r["BEGDOC"] for r in rows] == [d["control"] for d in documents]
    assert len(rows) == summary(eml_export)["counts"]["documents"]
    messages = {r["BEGDOC"]: r for r in rows if r["DOCTYPE"] == "message"}
    attachments = [r for r in rows if r["DOCTYPE"] == "attachment"]
    assert attachments, "the corpus has attachments"
    for row in attachments:
        parent = messages[row["PARENT_DOCID"]]
        assert row["BEGDOC"] in parent["ATTACH_DOCIDS"].split("; ")
        assert row["BEGATTACH"] == parent["BEGDOC"]
        native = (eml_export / row["NATIVE_PATH"]).read_bytes()
        assert hashlib.sha256(native).hexdigest() == row["SHA256"]
    for row in rows:
        assert (eml_export / row["TEXT_PATH"]).is_file()
        assert (eml_export / row["NATIVE_PATH"]).is_file()


def test_the_manifests_agree(eml_export: Path) -> None:
    with open(eml_export / "manifest.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    documents = manifest(eml_export)
    assert [r["control"] for r in rows] == [d["control"] for d in documents]
    assert [r["sha256"] for r in rows] == [d["sha256"] for d in documents]
    first = documents[0]
    assert {"control", "id", "sha256", "size", "date", "from", "to", "cc", "envelope_to",
            "subject", "folder", "source", "attachments", "parent", "children",
            "path"} <= first.keys()


def test_verify_passes_and_names_every_change(eml_export: Path, tmp_path: Path) -> None:
    ok = run("verify", "--export", eml_export, "--json")
    assert ok.returncode == 0, ok.stdout.decode()
    copy = tmp_path / "copy"
    shutil.copytree(eml_export, copy)
    rows = [r for r in manifest(copy) if r["type"] == "message"]
    changed, removed = rows[0]["path"], rows[1]["text_path"]
    data = bytearray((copy / changed).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / changed).write_bytes(bytes(data))
    (copy / removed).unlink()
    (copy / "natives" / "planted.eml").write_bytes(b"Subject: not exported\r\n\r\nhi\r\n")
    csv_text = (copy / "manifest.csv").read_text("utf-8")
    (copy / "manifest.csv").write_text(csv_text.replace(rows[2]["sha256"], "0" * 64), "utf-8")
    found = run("verify", "--export", copy)
    out = found.stdout.decode()
    assert found.returncode == 1
    assert f"altered: {changed}" in out
    assert f"missing: {removed}" in out
    assert "extra: natives/planted.eml" in out
    assert "altered: manifest.csv" in out


def test_an_edited_summary_breaks_the_signature(eml_export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(eml_export, copy)
    text = (copy / "summary.json").read_text("utf-8")
    (copy / "summary.json").write_text(text.replace('"errors": 0', '"errors": 1', 1), "utf-8")
    found = run("verify", "--export", copy, "--json")
    assert found.returncode == 1 and b'"signature": "invalid"' in found.stdout


@pytest.mark.timeout(900)
def test_the_export_key_is_printed_and_checked(corpus_vault: Path, eml_export: Path,
                                               tmp_path: Path) -> None:
    printed = run("export-key", "--vault", corpus_vault)
    assert printed.returncode == 0
    assert printed.stdout == (eml_export / "export-key.pem").read_bytes()
    key = tmp_path / "given.pem"
    key.write_bytes(printed.stdout)
    assert run("verify", "--export", eml_export, "--key", key).returncode == 0
    other = tmp_path / "other"
    assert run("init", "--vault", other).returncode == 0
    other_key = tmp_path / "other.pem"
    other_key.write_bytes(run("export-key", "--vault", other).stdout)
    refused = run("verify", "--export", eml_export, "--key", other_key)
    assert refused.returncode == 1 and b"another key" in refused.stdout


@pytest.mark.timeout(1800)
def test_mbox_reimports_to_the_same_hashes(corpus_vault: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mbox-export"
    result = export(corpus_vault, folder, "", "--format", "mbox", "--zip")
    assert result["counts"]["errors"] == 0
    assert run("verify", "--export", folder).returncode == 0
    assert run("verify", "--export", f"{folder}.zip").returncode == 0
    original = {m["sha256"] for m in search_json(corpus_vault, "")}
    again = tmp_path / "again"
    assert run("init", "--vault", again).returncode == 0
    files = sorted((folder / "mbox").rglob("*.mbox"))
    assert files
    imported = run("import", *files, "--format", "mbox", "--vault", again, timeout=900)
    assert imported.returncode == 0, imported.stderr.decode()
    reimported = {m["sha256"] for m in search_json(again, "")}
    # The one change mboxrd cannot avoid: a message without a final line break gets one,
    # and the summary names each such message.
    added = {m["sha256"] for m in summary(folder)["mbox_line_break_added"]}
    assert reimported - original == {_with_line_break(corpus_vault, h) for h in added}
    assert original - reimported == added


def _with_line_break(vault_path: Path, sha256: str) -> str:
    with Vault.open(vault_path) as vault:
        _row, raw = finding.raw_message(vault, OPERATOR, sha256, "test")
    return hashlib.sha256(raw + b"\n").hexdigest()
