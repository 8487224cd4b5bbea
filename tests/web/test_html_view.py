"""The HTML view of the message page: a sandboxed frame served with the frame CSP, cid:
images through links that prove themselves (the frame sends no cookie), remote images only
after the reader asks for them for that message (audited), and nothing for others."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.store import audit
from mailvault.web import mail_html
from mailvault.web import part_links as links_module
from tests.usecases.conftest import archive, file_arrival
from tests.web.hostile_mail import PNG, related_message
from tests.web.site import Browser, Site, site_fixture

REMOTE = "http://203.0.113.1/pixel.png"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


@pytest.fixture
def message(site: Site) -> int:
    raw = related_message(f'<p>Logo:</p><img src="cid:logo@example.net"><img src="{REMOTE}">'
                          '<script>alert(1)</script>',
                          {"logo@example.net": ("image/png", PNG)})
    (message_id,) = archive(site.vault, [(raw, file_arrival("html"))])
    return message_id


@pytest.fixture
def bob(site: Site) -> Browser:
    browser = site.browser()
    browser.sign_in("bob")
    return browser


def cid_links(document: str) -> list[str]:
    return [html.unescape(u) for u in re.findall(r'src="(/messages/\d+/parts/[^"]+)"',
                                                 document)]


def test_the_page_frames_the_html_in_a_sandbox(bob: Browser, message: int) -> None:
    page = bob.get(f"/messages/{message}")
    assert f'sandbox="{mail_html.IFRAME_SANDBOX}"' in page.text
    assert f'src="/messages/{message}/html"' in page.text
    assert 'id="load-remote-images"' in page.text and "1 remote image" in page.text
    frame = bob.get(f"/messages/{message}/html")
    assert frame.headers["content-security-policy"] == mail_html.frame_csp(False)
    assert frame.headers["content-type"].startswith("text/html")
    assert "<script" not in frame.text and REMOTE not in frame.text


def test_cid_images_come_through_links_that_need_no_cookie(site: Site, bob: Browser,
                                                           message: int) -> None:
    (link,) = cid_links(bob.get(f"/messages/{message}/html").text)
    stranger = site.browser()  # no cookie at all, as the sandboxed frame
    image = stranger.get(link)
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["cross-origin-resource-policy"] == "cross-origin"
    other_part = re.sub(r"/parts/(\d+)", lambda m: f"/parts/{int(m.group(1)) + 1}", link)
    assert stranger.get(other_part).status_code == 401
    forged = re.sub(r"k=[0-9a-f]+", "k=" + "0" * 64, link)
    assert stranger.get(forged).status_code == 401
    bob.get("/")
    bob.form("/logout")
    assert stranger.get(link).status_code == 401  # the session it was made for has ended


def test_an_expired_part_link_is_refused(site: Site, bob: Browser, message: int,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(links_module, "PART_LINK_S", -1)
    (link,) = cid_links_of(bob, message)
    answer = site.browser().get(link)
    assert answer.status_code == 401 and "expired" in answer.text


def cid_links_of(browser: Browser, message: int) -> list[str]:
    return cid_links(browser.get(f"/messages/{message}/html").text)


def test_remote_images_load_only_when_asked_for(site: Site, bob: Browser,
                                                message: int) -> None:
    bob.get(f"/messages/{message}")
    assert bob.form(f"/messages/{message}/remote-images").status_code == 303
    page = bob.get(f"/messages/{message}")
    assert 'id="remote-shown"' in page.text and 'id="load-remote-images"' not in page.text
    frame = bob.get(f"/messages/{message}/html")
    assert frame.headers["content-security-policy"] == mail_html.frame_csp(True)
    assert REMOTE in frame.text
    with site.vault.engine.connect() as conn:
        assert ("bob", "remote-images") in [(e.actor, e.action) for e in audit.entries(conn)]
    # Another session of the same person starts blocked again.
    again = site.browser()
    again.sign_in("bob")
    assert REMOTE not in again.get(f"/messages/{message}/html").text


def test_others_get_nothing(site: Site, message: int) -> None:
    dave = site.browser()
    dave.sign_in("dave")
    assert dave.get(f"/messages/{message}/html").status_code == 404
    dave.get("/")
    assert dave.form(f"/messages/{message}/remote-images").status_code == 404
    assert site.browser().get(f"/messages/{message}/html").status_code == 303
