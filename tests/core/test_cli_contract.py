"""The command-line contract of DESIGN.md, through the installed program: --vault and
MAILVAULT_VAULT, JSON output that parses, and errors as one sentence on stderr with exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailvault.ingest.files import FORMATS
from tests.core.conftest import CorpusVault
from tests.support import build_message, invoke, run, write_eml_folder


@pytest.fixture
def empty_vault(tmp_path: Path) -> Path:
    """A new vault (made in-process: the program's own init is the corpus vault's)."""
    path = tmp_path / "vault"
    assert invoke("init", "--vault", path).exit_code == 0
    return path


def assert_one_line_error(result: object, text: str) -> None:
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert stderr == f"mailvault: {text}\n"


def test_errors_are_one_sentence(empty_vault: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert_one_line_error(run("count", "", "--vault", missing),
                          f"there is no vault in {missing} (create one with 'mailvault init').")
    assert_one_line_error(run("init", "--vault", empty_vault),
                          f"{empty_vault} already holds a vault.")
    assert_one_line_error(run("get", "424242", "--raw", "--vault", empty_vault),
                          "no message has id 424242.")
    assert_one_line_error(run("import", missing, "--vault", empty_vault),
                          f"{missing} does not exist.")
    assert_one_line_error(run("import", tmp_path, "--format", "pst2", "--vault", empty_vault),
                          f"unknown format 'pst2': use one of {', '.join(FORMATS)}.")


def test_the_vault_comes_from_the_environment(empty_vault: Path, tmp_path: Path) -> None:
    write_eml_folder(tmp_path / "mail", [build_message(subject="From the environment")])
    env = {"MAILVAULT_VAULT": str(empty_vault)}
    assert run("import", tmp_path / "mail", env=env).returncode == 0
    counted = run("count", "", env=env)
    assert counted.stdout == b"1\n"


def test_json_outputs_parse(corpus_vault: CorpusVault) -> None:
    rows = json.loads(run("search", "subject:invoice", "--limit", "3", "--json",
                          "--vault", corpus_vault.path).stdout)
    assert len(rows) == 3
    shown = json.loads(run("show", str(rows[0]["id"]), "--json",
                           "--vault", corpus_vault.path).stdout)
    assert shown["sha256"] == rows[0]["sha256"]
    assert any(name.lower() == "subject" for name, _value in shown["headers"])
    assert shown["provenance"] and shown["provenance"][0]["kind"] in ("eml", "mbox", "maildir")
    for command in ("stats", "status", "verify"):
        result = run(command, "--json", "--vault", corpus_vault.path)
        assert result.returncode == 0, (command, result.stderr)
        assert isinstance(json.loads(result.stdout), dict)


def test_mail_text_is_shown_as_written(empty_vault: Path, tmp_path: Path) -> None:
    """Brackets in mail are text, not Rich markup: a list tag stays, a stray closing tag
    neither vanishes nor stops the command."""
    subject = "[dev] a [/b] tag"
    write_eml_folder(tmp_path / "mail", [build_message(subject=subject)])
    assert invoke("import", tmp_path / "mail", "--vault", empty_vault).exit_code == 0
    listed = invoke("search", "", "--vault", empty_vault)
    assert listed.exit_code == 0 and subject in listed.text
    shown = invoke("show", "1", "--vault", empty_vault)
    assert shown.exit_code == 0 and f"Subject: {subject}\n" in shown.text


def test_the_installed_command_keeps_its_workers_light(empty_vault: Path, tmp_path: Path) -> None:
    """multiprocessing runs the command's script again in every worker it starts: the script
    must import the command line only in the process that runs the command (each worker
    importing it cost 1.1-1.4 s of CPU per import)."""
    script = Path(sys.executable).parent / "mailvault"
    write_eml_folder(tmp_path / "mail", [build_message(subject=f"Worker {n}") for n in range(8)])
    done = subprocess.run([script, "import", tmp_path / "mail", "--vault", empty_vault],
                          capture_output=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr.decode()
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.decode().splitlines()
                if line.startswith("import time:")]
    assert imported.count("mailvault.ingest.prepare") >= 1  # the workers' server started
    assert imported.count("mailvault.entry") >= 2  # and workers re-ran the script
    assert imported.count("mailvault.cli") == 1
