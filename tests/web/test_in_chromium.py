"""What a person does, in Chromium against a real `serve`: sign in, search, narrow by a
facet, open a message (preview, then its page), see its HTML with its cid: image and without
its remote one, download the raw message (byte-exact), sign out; a user sees only their own
mail. Every request the browser makes stays on the archive's own address."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.capture.conftest import WEB_AND_SMTP, Running, running_serve
from tests.usecases.conftest import archive, file_arrival
from tests.web.hostile_mail import PNG, related_message
from tests.web.site import PASSWORD, Site, site_fixture

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REMOTE = "http://203.0.113.1/pixel.png"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Site, Running, int]]:
    for site in site_fixture(tmp_path):
        raw = related_message(f'<p id="hello">Hello in HTML</p><img id="logo" '
                              f'src="cid:logo@example.net"><img src="{REMOTE}">',
                              {"logo@example.net": ("image/png", PNG)},
                              subject="the logo")
        (html_id,) = archive(site.vault, [(raw, file_arrival("html"))])
        with running_serve(site.vault, WEB_AND_SMTP) as running:
            yield site, running, html_id


def open_page(browser: Browser, base: str) -> tuple[Page, list[str]]:
    """A page of a new context; the list fills with every request to another address and
    every console error (a Content-Security-Policy violation of our own pages is one)."""
    context = browser.new_context(accept_downloads=True, base_url=base)
    page = context.new_page()
    problems: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(base)
            else problems.append(request.url))
    page.on("console", lambda message: problems.append(f"{message.text} {message.location}")
            if message.type == "error" else None)
    return page, problems


def sign_in(page: Page, name: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#who")


def total(page: Page) -> int:
    return int(page.inner_text("#total"))


def test_a_day_at_the_archive(browser: Browser, served: tuple[Site, Running, int]) -> None:
    _site, running, html_id = served
    host, port = running.endpoints["web"]
    base = f"http://{host}:{port}"
    page, elsewhere = open_page(browser, base)
    sign_in(page, "audrey")
    assert page.inner_text("#who") == "audrey"

    started = time.perf_counter()
    page.fill("#q", "lunch")
    page.click("#search")
    page.wait_for_selector("#results tbody tr")
    first_result_s = time.perf_counter() - started
    assert total(page) == 2

    page.goto("/")
    everything = total(page)
    page.click(".facet[data-facet='Sender domain'] a.facet-value >> text=corp.example.com")
    page.wait_for_url("**fromdomain**")
    assert 0 < total(page) < everything

    page.goto("/?q=lunch")
    # Exact text: "Re: lunch plans" is a result too, and may be listed first.
    page.click("#results a.pick >> text=\"lunch plans\"")
    page.wait_for_selector("#preview-message")
    assert "Hello Bob" in page.inner_text("#preview")
    assert "sel=" in page.url  # the address names the selection, as without script
    page.click("#open-message")
    page.wait_for_selector("#subject")
    assert page.inner_text("#subject") == "lunch plans"

    with page.expect_download() as download:
        page.click("#raw")
    raw = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == page.inner_text("#sha256")

    page.click("#verify")
    page.wait_for_selector("#last-check.ok")

    page.goto(f"/messages/{html_id}")
    frame = page.frame_locator("#mail-frame")
    assert frame.locator("p").first.inner_text() == "Hello in HTML"
    logo = frame.locator("img[src*='/parts/']")
    logo.wait_for()
    loaded = logo.evaluate("image => image.decode().then(() => image.naturalWidth)")
    assert loaded == 8  # the cid: image, through its self-proving link

    page.click("#sign-out")
    page.wait_for_url("**/login")
    page.goto("/")
    assert "/login" in page.url
    assert elsewhere == []
    print(f"first result visible after {first_result_s * 1000:.0f} ms")


def test_a_user_sees_only_their_own_mail(browser: Browser,
                                         served: tuple[Site, Running, int]) -> None:
    site, running, _html_id = served
    host, port = running.endpoints["web"]
    page, elsewhere = open_page(browser, f"http://{host}:{port}")
    sign_in(page, "dave")
    assert total(page) == 2
    assert sum(int(n) for n in page.locator(
        ".facet[data-facet='Year'] .muted").all_inner_texts()) == 2
    answer = page.goto(f"/messages/{site.mail['secret']}")
    assert answer is not None and answer.status == 404
    assert "among your mail" in page.inner_text("#error")
    # The one console error is the 404 asked for.
    assert [p for p in elsewhere if "404" not in p] == []
