"""``mailvault review policy add|list|show|remove``, ``review run`` and ``review report``:
their JSON is the use cases' records, and a mistake is one sentence and exit status 1."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mailvault.vault import Vault
from tests.review.conftest import SMALL, add_reviewers, at
from tests.support import build_message, invoke, run
from tests.usecases.conftest import archive, file_arrival


def small_vault(path: Path) -> Path:
    vault = Vault.create(path)
    try:
        add_reviewers(vault)
        archive(vault, [(build_message(subject=subject, sender=sender, to=to, body=body,
                                       headers=headers, date=at(day)), file_arrival(name))
                        for name, (sender, to, subject, body, headers, day) in SMALL.items()])
    finally:
        vault.close()
    return path


def test_policies_runs_and_reports(tmp_path: Path) -> None:
    vault = small_vault(tmp_path / "vault")
    added = invoke("review", "policy", "add", "bob", "--supervise", "bob@corp.example",
                   "--lexicon", "guarantee*", "--lexicon", 'body:"off the books"',
                   "--sample", "50", "--period", "daily", "--seed", "11",
                   "--exclude-sender", "@alerts.example", "--reviewer", "rita",
                   "--escalate-to", "sam", "--vault", vault, "--json")
    assert added.exit_code == 0, added.stderr
    policy = added.json()
    assert (policy["seed"], policy["period"], policy["lexicon"]) == (
        11, "daily", ["guarantee*", 'body:"off the books"'])
    listed = invoke("review", "policy", "list", "--vault", vault, "--json").json()
    assert [p["name"] for p in listed] == ["bob"]
    assert invoke("review", "policy", "show", "1", "--vault", vault, "--json").json() == \
        policy
    first = invoke("review", "run", "--vault", vault, "--json").json()
    assert [(r["policy"], r["in_scope"], r["lexicon_hits"]) for r in first] == [("bob", 3, 2)]
    again = invoke("review", "run", "bob", "--vault", vault, "--json").json()
    assert again[0]["added"] == 0
    text = invoke("review", "report", "--csv", "--vault", vault).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["period"] for r in rows] == ["2024-03-04", "2024-03-05", "2024-03-06"]
    assert sum(int(r["in_scope"]) for r in rows) == 3
    assert invoke("review", "report", "--json", "--vault", vault).json()["reviewers"] == []
    removed = invoke("review", "policy", "remove", "bob", "--vault", vault, "--json").json()
    assert removed["active"] is False
    assert invoke("review", "run", "--vault", vault, "--json").json() == []


def test_a_mistake_is_one_sentence(tmp_path: Path) -> None:
    vault = small_vault(tmp_path / "vault")
    refused = run("review", "policy", "add", "x", "--supervise", "bob@corp.example",
                  "--lexicon", "subject:(", "--reviewer", "rita", "--vault", vault)
    assert refused.returncode == 1 and b"Traceback" not in refused.stderr
    assert refused.stderr.decode().startswith("mailvault: the lexicon term 'subject:(' ")
    missing = run("review", "run", "nothing", "--vault", vault)
    assert missing.returncode == 1
    assert missing.stderr.decode() == "mailvault: there is no review policy 'nothing'.\n"
