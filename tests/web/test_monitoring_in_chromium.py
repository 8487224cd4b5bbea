"""The administrator's monitoring page in Chromium against a real `serve`: the charts are
drawn (SVG, no script), a failed message shows with its reason, the Retry button hands it to
serve's archiver, and once archived the failure is settled and the batch is in the log. No
request leaves the archive's address and no console error (no CSP violation) occurs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.capture.conftest import Running, wait_until
from tests.web.site import PASSWORD, Site
from tests.web.test_in_chromium import open_page
from tests.web.test_monitoring_served import served

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["served"]


def sign_in_here(page: Page, name: str) -> None:
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#who")


def settled(page: Page) -> bool:
    page.goto("/monitoring")
    return page.locator("#no-failures").count() == 1


def test_an_administrator_retries_a_failed_message(
        browser: Browser, served: tuple[Site, Running, int]) -> None:
    _site, running, failure_id = served
    host, port = running.endpoints["web"]
    page, elsewhere = open_page(browser, f"http://{host}:{port}")
    # Signing in from the monitoring page's address leads back to it (an administrator
    # without the auditor role may not search, so "/" would be refused).
    page.goto("/monitoring")
    sign_in_here(page, "adam")
    assert page.locator("#nav-monitoring").count() == 1
    page.wait_for_selector("#archived-chart rect")
    assert page.locator("#storage-chart").count() == 1
    row = page.locator(f"#failure-{failure_id}")
    assert "too large" in row.locator(".reason").inner_text()

    row.locator("button.retry").click()
    page.wait_for_selector("#retry-result")
    assert f"Failure {failure_id}: queued" in page.inner_text("#retry-result")
    wait_until(lambda: settled(page), what="the failure to be settled on the page")
    assert "report.eml" in page.inner_text("#ingest-log")
    assert elsewhere == []
