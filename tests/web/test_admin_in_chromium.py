"""Administration in Chromium against a real `serve`: an auditor places a legal hold from the
holds page, the message it covers then says so on its page, an administrator shortens the
default retention from the retention page, and disposition keeps the held message back
while the others become candidates. Every request stays on the archive's own address, and
no page needs JavaScript for any of it (the forms are plain posts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.usecases import disposition
from tests.capture.conftest import WEB_AND_SMTP, Running, running_serve
from tests.web.site import Site, site_fixture
from tests.web.test_in_chromium import open_page, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Site, Running]]:
    for site in site_fixture(tmp_path):
        with running_serve(site.vault, WEB_AND_SMTP) as running:
            yield site, running


def test_an_auditor_places_a_hold_that_disposition_respects(
        browser: Browser, served: tuple[Site, Running]) -> None:
    site, running = served
    host, port = running.endpoints["web"]
    base = f"http://{host}:{port}"
    to_dave = site.mail["to_dave"]

    page, elsewhere = open_page(browser, base)
    sign_in(page, "audrey")
    page.click("#nav-admin")
    page.click("nav.admin-nav >> text=Legal holds")
    page.fill("#hold-name", "matter-17")
    page.fill("#hold-custodian", "dave@example.org")
    page.fill("#hold-reason", "subpoena of 2024-05-02")
    page.fill("#hold-owner", "legal counsel")
    page.click("#place-hold-button")
    page.wait_for_selector("#notice")
    assert page.inner_text("#notice") == "Hold matter-17 (2 messages now) placed."
    assert page.inner_text("tr[data-hold='matter-17'] td.count") == "2"

    page.goto(f"/messages/{to_dave}")
    assert "matter-17" in page.inner_text("#holds")
    assert "disposition will not delete it" in page.inner_text("#held")

    admin, admin_elsewhere = open_page(browser, base)
    sign_in(admin, "adam")
    admin.goto("/admin/retention")
    admin.fill("#default-policy input[name=period]", "1d")
    admin.click("#default-button")
    admin.wait_for_selector("#notice")
    assert admin.inner_text("#notice") == \
        "The default retention policy is now 1 days from date."
    assert admin.goto("/admin/holds").status == 403  # holds are the auditor's

    plan = disposition.dry_run(site.vault, local_operator("test"))
    held = {site.mail["to_dave"], site.mail["with_file"]}
    assert set(plan.held) == held
    assert all(names == ["matter-17"] for names in plan.held.values())
    candidates = {c.message_id for c in plan.candidates}
    assert candidates == set(site.mail.values()) - held

    page.goto("/admin/holds")
    page.fill("tr[data-hold='matter-17'] input[name=note]", "settled")
    page.click("tr[data-hold='matter-17'] button.release")
    page.wait_for_selector("#notice")
    assert "released by audrey" in page.inner_text("tr[data-hold='matter-17']")
    page.goto(f"/messages/{to_dave}")
    assert page.is_visible("#not-held")
    assert {c.message_id for c in disposition.dry_run(
        site.vault, local_operator("test")).candidates} == set(site.mail.values())
    assert elsewhere == [] and [p for p in admin_elsewhere if "403" not in p] == []
