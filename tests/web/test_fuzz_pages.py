"""The pages and the API's query strings against any text a person (or a crawler) may put
in a URL: queries in the search language and out of it, page numbers that are no numbers,
message references that are no references. Never a server error (500): a page with the
problem said, or a 4xx. (The API's JSON bodies are fuzzed from its schema by
test_api_fuzz.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.profile import fuzz
from tests.web.site import Browser, Site, site_fixture

# Text a URL can carry (lone surrogates cannot be encoded by any client).
TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=40),
    st.sampled_from(["", "0", "-1", "1e9", "99999999999999999999", "from:", "((((", "a OR",
                     "larger:999999999999999999999", "subject:(" * 70, "\x00", "%", "../",
                     "<script>", "after:2021-02-30", "-", "\u202e", "*"]))
PAGES = st.sampled_from(["/", "/build", "/preview/{ref}", "/messages/{ref}",
                         "/messages/{ref}/html", "/messages/{ref}/parts/{ref}",
                         "/messages/{ref}/attachments/{ref}", "/api/v1/search",
                         "/api/v1/count", "/api/v1/facets", "/api/v1/messages/{ref}",
                         "/api/v1/messages/{ref}/conversation"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from site_fixture(tmp_path_factory.mktemp("fuzz-pages"))


@pytest.fixture(scope="module")
def browser(site: Site) -> Browser:
    signed_in = site.browser()
    signed_in.sign_in("audrey")
    return signed_in


@fuzz(100, budget_s=None)
@given(page=PAGES, ref=TEXT, q=TEXT, sort=TEXT, number=TEXT, sel=TEXT)
def test_no_query_string_makes_a_server_error(browser: Browser, page: str, ref: str, q: str,
                                              sort: str, number: str, sel: str) -> None:
    url = page.replace("{ref}", quote(ref, safe="") or "x")
    response = browser.get(url, params={"q": q, "sort": sort, "page": number, "sel": sel,
                                        "limit": number, "offset": number})
    assert response.status_code < 500, (url, q, response.text[:300])
