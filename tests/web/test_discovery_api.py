"""The eDiscovery API's exports: ``person`` in ``POST /api/v1/exports`` exports exactly the
messages ``person report`` lists for that address (one rule, ``party:``); an export a stop
of serve interrupted is taken up again when serve starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.store import audit
from mailvault.usecases import exporting, subjects
from mailvault.web.background import resume_interrupted_exports
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


def test_serve_takes_up_the_web_exports_a_stop_left_unfinished(site: Site,
                                                               tmp_path: Path) -> None:
    operator = local_operator("audrey")
    # Started but never run: what a stop of serve in the middle of an export leaves; and
    # an export of the command line, left to its own command.
    from_web = exporting.start_export(site.vault, operator, "lunch",
                                      exporting.named_destination(site.vault, "lunch"))
    by_hand = exporting.start_export(site.vault, operator, "lunch", tmp_path / "by-hand")
    background = site.app.state.web.background
    assert resume_interrupted_exports(background, site.vault) == [from_web.id]
    background.wait_idle()
    assert exporting.export_job(site.vault, operator, from_web.id).state == "done"
    assert exporting.export_job(site.vault, operator, by_hand.id).state == "running"
    with site.vault.engine.connect() as conn:
        resumed = [e for e in audit.entries(conn) if e.action == "export-resume"]
    assert [(e.actor, e.detail["job"]) for e in resumed] == [("system:serve", from_web.id)]
    assert resume_interrupted_exports(background, site.vault) == []
