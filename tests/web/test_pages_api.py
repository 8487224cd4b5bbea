"""What the pages and the API show: search with facets that refine the query, the builder,
pages, sort, saved searches, the preview, the message page (verify now, attachments,
conversation, raw bytes), the API's exact shapes, and errors as one sentence."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.usecases import finding
from mailvault.web import pages_search
from tests.web.site import Browser, Site, site_fixture


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


@pytest.fixture
def audrey(site: Site) -> Browser:
    browser = site.browser()
    browser.sign_in("audrey")
    return browser


def test_a_facet_refines_the_query(site: Site, audrey: Browser) -> None:
    page = audrey.get("/")
    assert '<strong id="total">5</strong>' in page.text
    link = html.unescape(page.text.split('data-facet="Sender domain"')[1]
                         .split('href="')[1].split('"')[0])
    assert "fromdomain" in link
    refined = audrey.get(link)
    assert refined.status_code == 200
    total = int(refined.text.split('<strong id="total">')[1].split("<")[0])
    assert 0 < total < 5
    with_attachment = audrey.get("/?q=has:attachment")
    assert '<strong id="total">1</strong>' in with_attachment.text


def test_the_builder_composes_a_query(audrey: Browser) -> None:
    answer = audrey.get("/build", params={"q": "lunch", "from": "alice@example.org",
                                          "after": "2020-01-01", "folder": "My Mail",
                                          "has": "attachment"})
    assert answer.status_code == 303
    query = answer.headers["location"]
    assert query == pages_search.search_url(
        'lunch from:alice@example.org after:2020-01-01 folder:"My Mail" has:attachment')


def test_pages_and_sort(site: Site, audrey: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages_search, "PAGE_SIZE", 2)
    first = audrey.get("/?sort=largest")
    assert 'id="next-page"' in first.text and "rel=\"prev\"" not in first.text
    assert first.text.count('class="pick"') == 2
    third = audrey.get("/?sort=largest&page=3")
    assert third.text.count('class="pick"') == 1 and 'id="next-page"' not in third.text
    largest = finding.search(site.vault, local_operator("t"), "", order="largest").rows[0]
    assert f'data-id="{largest.id}"' in first.text.split("</tr>")[1]


def test_a_bad_query_is_one_sentence_on_the_page(audrey: Browser) -> None:
    page = audrey.get("/?q=after:yesterday")
    assert page.status_code == 200 and "is not a date" in page.text
    api = audrey.get("/api/v1/search?q=after:yesterday")
    assert api.status_code == 400 and "is not a date" in api.json()["error"]


def test_saved_searches(audrey: Browser) -> None:
    audrey.get("/")
    assert audrey.form("/saved", name="lunches", q="subject:lunch").status_code == 303
    page = audrey.get("/")
    assert "lunches" in page.text
    assert audrey.get("/api/v1/saved-searches").json()["searches"][0]["query"] == \
        "subject:lunch"
    search_id = audrey.get("/api/v1/saved-searches").json()["searches"][0]["id"]
    assert audrey.form(f"/saved/{search_id}/delete").status_code == 303
    assert audrey.get("/api/v1/saved-searches").json() == {"searches": []}


def test_the_preview_beside_the_list(site: Site, audrey: Browser) -> None:
    to_bob = site.mail["to_bob"]
    page = audrey.get(f"/?q=lunch&sel={to_bob}")
    assert 'id="preview-message"' in page.text and "Hello Bob" in page.text
    fragment = audrey.get(f"/preview/{to_bob}")
    assert fragment.text.lstrip().startswith("<article") and "Hello Bob" in fragment.text


def test_the_message_page(site: Site, audrey: Browser) -> None:
    to_bob = site.mail["to_bob"]
    page = audrey.get(f"/messages/{to_bob}")
    assert page.status_code == 200
    assert "lunch plans" in page.text and "Not verified on its own yet" in page.text
    assert 'id="conversation"' in page.text and "Re: lunch plans" in page.text
    assert audrey.form(f"/messages/{to_bob}/verify").status_code == 303
    page = audrey.get(f"/messages/{to_bob}")
    assert "intact" in page.text and "by audrey" in page.text
    raw = audrey.get(f"/messages/{to_bob}/raw")
    assert raw.headers["content-type"] == "message/rfc822"
    assert hashlib.sha256(raw.content).hexdigest() == raw.headers["x-sha256"]
    assert raw.headers["x-sha256"] in page.text
    with_file = audrey.get(f"/messages/{site.mail['with_file']}")
    assert "contract.txt" in with_file.text
    shown = audrey.get(with_file.text.split('">show</a>')[0].rsplit('href="', 1)[1])
    assert shown.status_code == 200 and "signed" in shown.text


def test_the_api_shapes(site: Site, audrey: Browser) -> None:
    auditor = local_operator("t")
    answer = audrey.get("/api/v1/search", params={"q": "lunch", "limit": 1, "offset": 1})
    data = answer.json()
    assert set(data) == {"total", "messages"} and data["total"] == 2
    expected = finding.search(site.vault, auditor, "lunch", limit=1, offset=1).rows
    assert data["messages"] == [row.to_json() for row in expected]
    message = audrey.get(f"/api/v1/messages/{site.mail['with_file']}").json()
    assert message["id"] == site.mail["with_file"]
    assert message["attachments"][0]["filename"] == "contract.txt"
    number = message["attachments"][0]["number"]
    attachment = audrey.get(f"/api/v1/messages/{site.mail['with_file']}/attachments/{number}")
    assert attachment.content == b"signed\n"
    raw = audrey.get(f"/api/v1/messages/{site.mail['with_file']}/raw")
    assert hashlib.sha256(raw.content).hexdigest() == message["sha256"]
    spec = audrey.get("/api/v1/openapi.json").json()
    assert {"/api/v1/search", "/api/v1/messages/{ref}/raw", "/api/v1/facets",
            "/api/v1/restore"} <= set(spec["paths"])
    assert not any(path.startswith("/messages") for path in spec["paths"])


def test_errors_are_one_sentence(site: Site, audrey: Browser,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    missing = audrey.get("/no/such/page")
    assert missing.status_code == 404 and "there is no such page." in missing.text
    assert audrey.get("/api/v1/nothing").json() == {"error": "there is no such page."}
    assert audrey.get("/messages/999999").status_code == 404
    bad = audrey.get("/api/v1/search?limit=-3")
    assert bad.status_code == 400 and set(bad.json()) == {"error"}

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("a bug with a secret path /srv/vault")

    monkeypatch.setattr(finding, "search", broken)
    page = audrey.get("/")
    assert page.status_code == 500 and "/srv/vault" not in page.text
    assert "something went wrong inside the archive" in page.text
    assert audrey.get("/api/v1/search").json() == {
        "error": "something went wrong inside the archive; the error has been logged."}
