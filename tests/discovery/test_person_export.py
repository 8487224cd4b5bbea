"""The subject-access export: ``export --person ADDR`` holds exactly the messages ``person
report ADDR`` lists (one rule, ``party:``), on real corpus mail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.discovery.conftest import export, manifest, summary
from tests.support import run, search_json

# In the Enron inbox as a To and as a Cc recipient.
PERSON = "k..allen@enron.com"


@pytest.mark.timeout(900)
def test_the_person_export_holds_exactly_the_person_report(corpus_vault: Path,
                                                           tmp_path: Path) -> None:
    reported = run("person", "report", PERSON, "--vault", corpus_vault, "--json")
    assert reported.returncode == 0, reported.stderr.decode()
    expected = {m["id"] for m in json.loads(reported.stdout)["messages"]}
    copied = {m["id"] for m in search_json(corpus_vault, f'cc:"{PERSON}"')}
    assert copied and copied < expected

    folder = tmp_path / "subject-access"
    result = export(corpus_vault, folder, "--person", " K..Allen@Enron.com ")
    assert result["counts"]["errors"] == 0
    exported = {r["id"] for r in manifest(folder) if r["type"] == "message"}
    assert exported == expected
    assert summary(folder)["query"] == f'party:"{PERSON}"'


def test_a_query_narrows_the_person_export(corpus_vault: Path, tmp_path: Path) -> None:
    narrowed = search_json(corpus_vault, f'party:{PERSON} -cc:"{PERSON}"')
    assert narrowed, "he is a To recipient of some messages"
    folder = tmp_path / "narrowed"
    export(corpus_vault, folder, f'-cc:"{PERSON}"', "--person", PERSON)
    exported = {r["id"] for r in manifest(folder) if r["type"] == "message"}
    assert exported == {m["id"] for m in narrowed}


def test_a_person_must_be_an_address(corpus_vault: Path, tmp_path: Path) -> None:
    done = run("export", "--person", "lavorato", "--to", tmp_path / "x",
               "--vault", corpus_vault)
    assert done.returncode == 1
    assert done.stderr.decode() == ("mailvault: 'lavorato' is not a mail address "
                                    "(name@domain).\n")
    assert not (tmp_path / "x").exists()
