"""Every route and every role: an auditor sees everything; an admin without auditor and a
reviewer see no content at all; a user sees exactly their own mail, by page, API, search
count and facet count, and another's message id is "not found" and audited."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest

from mailvault.store import audit
from tests.web.site import PEOPLE, Browser, Site, site_fixture

# Who sees which of the site's messages (None: no mail at all, 403).
VISIBLE: dict[str, set[str] | None] = {
    "audrey": {"to_bob", "reply", "to_dave", "with_file", "secret"},
    "boss": {"to_bob", "reply", "to_dave", "with_file", "secret"},
    "adam": None,
    "rita": None,
    "bob": {"to_bob", "reply"},
    "dave": {"to_dave", "with_file"},
}
MESSAGE_ROUTES = ("/messages/{id}", "/messages/{id}/raw", "/preview/{id}",
                  "/api/v1/messages/{id}", "/api/v1/messages/{id}/raw",
                  "/api/v1/messages/{id}/conversation")
SEARCH_ROUTES = ("/", "/?q=subject:lunch", "/api/v1/search", "/api/v1/count",
                 "/api/v1/facets", "/api/v1/saved-searches")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from site_fixture(tmp_path_factory.mktemp("authz"))


@pytest.fixture(scope="module")
def browsers(site: Site) -> dict[str, Browser]:
    signed_in = {}
    for name in PEOPLE:
        browser = site.browser()
        assert browser.sign_in(name).status_code == 303
        signed_in[name] = browser
    return signed_in


def test_the_table_covers_every_role() -> None:
    assert set(VISIBLE) == set(PEOPLE)


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_message_routes(site: Site, browsers: dict[str, Browser], person: str) -> None:
    browser = browsers[person]
    token = site.token(person)
    visible = VISIBLE[person]
    for key, message_id in site.mail.items():
        for route in MESSAGE_ROUTES:
            url = route.format(id=message_id)
            for how in ("session", "token"):
                if how == "token" and not url.startswith("/api/"):
                    continue
                headers = {"authorization": f"Bearer {token}"} if how == "token" else {}
                answer = browser.get(url, headers=headers)
                expected = 403 if visible is None else 200 if key in visible else 404
                assert answer.status_code == expected, (person, url, how, answer.text[:200])
                if expected != 200:
                    assert "Traceback" not in answer.text


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_search_routes_and_counts(site: Site, browsers: dict[str, Browser],
                                  person: str) -> None:
    browser = browsers[person]
    visible = VISIBLE[person]
    for route in SEARCH_ROUTES:
        answer = browser.get(route)
        if visible is None and route != "/api/v1/saved-searches":
            assert answer.status_code == 403, (person, route)
            continue
        assert answer.status_code == 200, (person, route, answer.text[:300])
    if visible is None:
        return
    ids = {site.mail[key] for key in visible}
    found = browser.get("/api/v1/search", params={"limit": 100}).json()
    assert {m["id"] for m in found["messages"]} == ids and found["total"] == len(ids)
    assert browser.get("/api/v1/count").json() == {"total": len(ids)}
    facets = browser.get("/api/v1/facets").json()
    assert facets["total"] == len(ids)
    assert sum(v["count"] for v in facets["year"]) == len(ids)
    assert sum(v["count"] for v in facets["tier"]) == len(ids)
    assert facets["attachment"]["with"] + facets["attachment"]["without"] == len(ids)
    page = browser.get("/")
    assert f'<strong id="total">{len(ids)}</strong>' in page.text
    # A query that would match others' mail still counts only their own.
    everybody = browser.get("/api/v1/count", params={"q": "fromdomain:example.org"}).json()
    own_from_org = sum(1 for k in visible if k != "to_dave")
    assert everybody == {"total": own_from_org}


def test_another_users_message_is_not_found_and_audited(site: Site,
                                                        browsers: dict[str, Browser]) -> None:
    secret = site.mail["secret"]
    answer = browsers["bob"].get(f"/messages/{secret}")
    assert answer.status_code == 404 and "among your mail" in answer.text
    api = browsers["bob"].get(f"/api/v1/messages/{secret}/raw")
    assert api.status_code == 404 and "among your mail" in api.json()["error"]
    by_sha = browsers["bob"].get(f"/api/v1/messages/{_sha(site, secret)[:12]}")
    assert by_sha.status_code == 404
    with site.vault.engine.connect() as conn:
        denied = [e for e in audit.entries(conn) if e.actor == "bob" and e.action == "denied"]
    assert len(denied) >= 3


def test_attachments_by_role(site: Site, browsers: dict[str, Browser]) -> None:
    with_file = site.mail["with_file"]
    number = browsers["audrey"].get(f"/api/v1/messages/{with_file}").json()[
        "attachments"][0]["number"]
    for person, expected in (("audrey", 200), ("dave", 200), ("bob", 404), ("adam", 403),
                             ("rita", 403)):
        for url in (f"/messages/{with_file}/attachments/{number}",
                    f"/messages/{with_file}/attachments/{number}/view",
                    f"/api/v1/messages/{with_file}/attachments/{number}"):
            assert browsers[person].get(url).status_code == expected, (person, url)


def test_verify_and_saved_searches_by_role(site: Site, browsers: dict[str, Browser]) -> None:
    to_bob = site.mail["to_bob"]
    for person, expected in (("audrey", 303), ("bob", 303), ("dave", 404), ("adam", 403)):
        browser = browsers[person]
        browser.get("/")  # any page, an error page too, carries the session's CSRF token
        assert browser.form(f"/messages/{to_bob}/verify").status_code == expected, person
    for person, expected in (("bob", 303), ("adam", 403), ("rita", 403)):
        browsers[person].get("/")
        assert browsers[person].form("/saved", name="mine", q="lunch").status_code == expected


def _sha(site: Site, message_id: int) -> str:
    raw = site.browser()
    raw.sign_in("audrey")
    return hashlib.sha256(raw.get(f"/api/v1/messages/{message_id}/raw").content).hexdigest()


# The eDiscovery API: an auditor (audrey, boss) only; every other role is refused (403),
# by session (reading) and by token (reading and starting).
DISCOVERY_READ = ("/api/v1/cases", "/api/v1/exports")


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_discovery_api_by_role(site: Site, browsers: dict[str, Browser], person: str) -> None:
    auditor = VISIBLE[person] is not None and person not in ("bob", "dave")
    token = {"authorization": f"Bearer {site.token(person)}"}
    for route in DISCOVERY_READ:
        assert browsers[person].get(route).status_code == (200 if auditor else 403), route
        assert browsers[person].get(route, headers=token).status_code == (
            200 if auditor else 403), route
    case = browsers[person].post("/api/v1/cases", headers=token,
                                 json={"name": f"matter of {person}"})
    assert case.status_code == (201 if auditor else 403), case.text
    started = browsers[person].post("/api/v1/exports", headers=token,
                                    json={"name": f"export-{person}", "query": "lunch"})
    assert started.status_code == (202 if auditor else 403), started.text
    if auditor:
        job = started.json()
        assert job["total"] == 2 and job["query"] == "lunch"
        shown = browsers[person].get(f"/api/v1/cases/matter of {person}")
        assert shown.status_code == 200
        assert next(e["action"] for e in shown.json()["custody"]) == "case-create"
        # The job runs in a thread of the application; it is followed to its end.
        deadline = time.monotonic() + 300
        while (state := browsers[person].get(f"/api/v1/exports/{job['id']}").json())[
                "state"] != "done":
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["done"] == 2 and len(state["summary_sha256"]) == 64
    else:
        assert browsers[person].get("/api/v1/exports/1").status_code == 403
        assert browsers[person].get("/api/v1/cases/anything").status_code == 403
