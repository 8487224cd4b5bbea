"""The eDiscovery API's subject-access export: ``person`` in ``POST /api/v1/exports`` exports
exactly the messages ``person report`` lists for that address (one rule, ``party:``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.usecases import exporting, subjects
from tests.web.site import Site, site_fixture


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


def test_the_api_person_export_holds_exactly_the_person_report(site: Site) -> None:
    # dave is the To of one message (and its journal's envelope recipient), the From of
    # another; three messages of the archive are none of his.
    reported = {m.row.id for m in
                subjects.person_report(site.vault, local_operator("test"),
                                       "dave@example.org").messages}
    assert reported == {site.mail["to_dave"], site.mail["with_file"]}
    browser = site.browser()
    started = browser.post("/api/v1/exports", json={"name": "sar-dave",
                                                    "person": " Dave@Example.org "},
                           headers={"authorization": f"Bearer {site.token('audrey')}"})
    assert started.status_code == 202, started.text
    assert started.json()["query"] == 'party:"dave@example.org"'
    site.app.state.web.background.wait_idle()
    folder = exporting.named_destination(site.vault, "sar-dave")
    rows = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert {r["id"] for r in rows if r["type"] == "message"} == reported
    state = browser.get(f"/api/v1/exports/{started.json()['id']}",
                        headers={"authorization": f"Bearer {site.token('audrey')}"}).json()
    assert state["state"] == "done" and state["done"] == len(reported)
