"""Fixtures of the eDiscovery tests: a vault of real corpus mail (some of it in the Deep
tier) archived once per session, and helpers to run and read exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import run


@pytest.fixture(scope="session")
def corpus_vault(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus's EML sets and three mbox folders, by the real ``mailvault import``; the
    ``straw`` folder moved to the Deep tier. Tests export from it; they do not change mail."""
    path = tmp_path_factory.mktemp("discovery") / "vault"
    assert run("init", "--vault", path).returncode == 0
    enron = corpus / "mbox" / "enron-allen-p"
    imported = run("import", corpus / "eml", enron / "inbox.mbox", enron / "straw.mbox",
                   corpus / "mbox" / "rlug", "--vault", path, timeout=900)
    assert imported.returncode == 0, imported.stderr.decode()
    moved = run("tier", "move", "folder:straw", "--to", "deep", "--vault", path)
    assert moved.returncode == 0, moved.stderr.decode()
    return path


def export(vault: Path, to: Path, *args: str | Path) -> dict[str, Any]:
    """Run ``mailvault export`` for real; its JSON result."""
    done = run("export", *args, "--to", to, "--vault", vault, "--json", timeout=900)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def manifest(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((folder / "manifest.json").read_text("utf-8"))
    return rows


def summary(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "summary.json").read_text("utf-8"))
    return data
