"""A case in Chromium against a real `serve`: an auditor opens a case from the Cases page,
names a custodian, places a hold from it and starts an export, which the serving process's
job worker runs while the page answers at once; reloading shows it done with its summary
hash, and the chain of custody lists each step. No script, no request elsewhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.capture.conftest import WEB_AND_SMTP, Running, running_serve
from tests.web.site import Site, site_fixture
from tests.web.test_in_chromium import open_page, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# How long the export of two messages may take on a busy machine (a readiness deadline).
EXPORT_DEADLINE_S = 120


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Site, Running]]:
    for site in site_fixture(tmp_path):
        with running_serve(site.vault, WEB_AND_SMTP) as running:
            yield site, running


def test_an_auditor_works_a_case(browser: Browser, served: tuple[Site, Running]) -> None:
    site, running = served
    host, port = running.endpoints["web"]
    base = f"http://{host}:{port}"
    page, elsewhere = open_page(browser, base)
    sign_in(page, "audrey")
    page.click("#nav-admin")
    page.click("nav.admin-nav >> text=Cases")
    page.fill("#case-name", "matter-17")
    page.fill("#case-description", "subpoena of 2024-05-02")
    page.click("#create-case")
    assert page.inner_text("#notice") == "Case matter-17 opened."

    page.fill("#custodian-address", "dave@example.org")
    page.click("#add-custodian")
    assert page.inner_text("tr[data-custodian='dave@example.org'] td.count") == "2"
    page.fill("#hold-name", "matter-17-dave")
    page.fill("#hold-custodian", "dave@example.org")
    page.fill("#hold-reason", "subpoena")
    page.fill("#hold-owner", "legal counsel")
    page.click("#place-hold")
    assert page.inner_text("tr[data-hold='matter-17-dave'] td.count") == "2"

    page.fill("#export-folder", "matter-17")
    page.fill("#export-query", "party:dave@example.org")
    page.select_option("#export-by", "custodian")
    page.click("#start-export")
    assert page.inner_text("#notice").startswith("Export job ")
    row = "tr[data-export]"
    deadline = time.monotonic() + EXPORT_DEADLINE_S
    while page.inner_text(f"{row} td.state") != "done":
        assert time.monotonic() < deadline, page.inner_text(row)
        page.reload()
    assert page.inner_text(f"{row} td.progress") == "2 of 2"
    assert len(page.inner_text(f"{row} code.summary-hash")) == 64
    assert (site.vault.path / "exports" / "matter-17" / "summary.json").is_file()
    actions = page.locator("#custody td.action").all_inner_texts()
    assert [a for a in actions if a != "case-view"] == [
        "case-create", "case-custodian", "hold-place", "case-hold", "export-start",
        "export-finish"]
    assert elsewhere == []
