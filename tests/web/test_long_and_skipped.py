"""Hostile messages on the pages: a million-character subject is cut, saying so, in the
results list and on the message page; what a zip bomb's extraction skipped is said on the
message page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.test_hostile_messages import zip_bomb
from tests.support import build_message
from tests.usecases.conftest import archive, file_arrival
from tests.web.site import Browser, Site, site_fixture

LONG = "long " + "s" * 1_000_000


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


@pytest.fixture
def bob(site: Site) -> Browser:
    browser = site.browser()
    browser.sign_in("bob")
    return browser


def test_a_million_character_subject_is_cut_on_the_pages(site: Site, bob: Browser) -> None:
    raw = build_message(subject=LONG, sender="alice@example.org", to=("bob@example.org",))
    (message,) = archive(site.vault, [(raw, file_arrival("long"))])
    results = bob.get("/", params={"q": "subject:long"})
    assert results.status_code == 200
    assert "cut: 1,000,005 characters in all" in results.text
    assert len(results.text) < 100_000
    page = bob.get(f"/messages/{message}")
    assert page.status_code == 200
    assert "cut: 1,000,005 characters in all" in page.text
    assert len(page.text) < 100_000
    assert "cut: 1,000,005 characters in all" in bob.get(f"/preview/{message}").text
    # The raw message keeps every character.
    assert bob.get(f"/messages/{message}/raw").content == raw


def test_what_a_zip_bomb_skipped_is_said_on_the_message_page(site: Site, bob: Browser) -> None:
    (message,) = archive(site.vault, [(b"To: bob@example.org\n" + zip_bomb(),
                                       file_arrival("bomb"))])
    page = bob.get(f"/messages/{message}")
    assert page.status_code == 200
    assert 'id="defects"' in page.text
    assert "attachment bomb.docx: its text was not extracted" in page.text
