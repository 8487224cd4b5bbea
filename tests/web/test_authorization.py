"""Every route and every role: an auditor sees everything; an admin without auditor sees no
content at all; a reviewer sees exactly the messages of their review queues, and a user
exactly their own mail, by page, API, search count and facet count; another's message id
is "not found" and audited. The review routes (queue, items, decisions, tags, reports) are
checked for every role too."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from mailvault.accounts import users
from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.store import audit
from mailvault.usecases import reviewing
from mailvault.usecases.reviewing import PolicyDraft
from tests.web.site import ACTOR, PASSWORD, PEOPLE, Browser, Site, site_fixture

# Who sees which of the site's messages (None: no mail at all, 403).
VISIBLE: dict[str, set[str] | None] = {
    "audrey": {"to_bob", "reply", "to_dave", "with_file", "secret"},
    "boss": {"to_bob", "reply", "to_dave", "with_file", "secret"},
    "adam": None,
    "rita": {"to_bob", "reply"},
    "bob": {"to_bob", "reply"},
    "dave": {"to_dave", "with_file"},
}
MESSAGE_ROUTES = ("/messages/{id}", "/messages/{id}/raw", "/preview/{id}",
                  "/api/v1/messages/{id}", "/api/v1/messages/{id}/raw",
                  "/api/v1/messages/{id}/conversation")
SEARCH_ROUTES = ("/", "/?q=subject:lunch", "/api/v1/search", "/api/v1/count",
                 "/api/v1/facets", "/api/v1/saved-searches")


OFFICER = Principal("cli:officer", frozenset({Role.ADMIN}))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The site, with rita reviewing bob's mail that says "lunch" (to_bob and the reply),
    and sam, another reviewer, dave's."""
    for built in site_fixture(tmp_path_factory.mktemp("authz")):
        users.add_user(built.vault, "sam", ["reviewer"], [], PASSWORD, ACTOR)
        for name, address, term, reviewer in (("bob", "bob@example.org", "lunch", "rita"),
                                              ("dave", "dave@example.org", "quarterly",
                                               "sam")):
            reviewing.add_policy(built.vault, OFFICER, PolicyDraft(
                name=name, supervised=(address,), lexicon=(term,), reviewers=(reviewer,)))
        reviewing.run(built.vault, OFFICER)
        yield built


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
                             ("rita", 404)):
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


# Who may use each review route: the reviewer works their queue; reports are for reviewers
# and auditors; the policies may be listed by administrators too.
QUEUE = {"rita"}
REPORTS = {"rita", "audrey", "boss"}
POLICIES = {"rita", "audrey", "boss", "adam"}
REVIEW_ROUTES = (("/review", QUEUE), ("/review/items/{item}", QUEUE),
                 ("/review/reports", REPORTS), ("/review/reports.csv", REPORTS),
                 ("/review/reports.csv?table=reviewers", REPORTS),
                 ("/api/v1/review/policies", POLICIES), ("/api/v1/review/queue", QUEUE),
                 ("/api/v1/review/items/{item}", QUEUE), ("/api/v1/review/reports", REPORTS),
                 ("/api/v1/review/reports.csv", REPORTS))


def _items(site: Site, reviewer: str) -> list[int]:
    who = Principal(reviewer, frozenset({Role.REVIEWER}))
    return [i.id for i in reviewing.queue(site.vault, who, include_decided=True)]


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_review_routes_by_role(site: Site, browsers: dict[str, Browser], person: str) -> None:
    browser = browsers[person]
    token = site.token(person)
    item = _items(site, "rita")[0]
    for route, allowed in REVIEW_ROUTES:
        url = route.format(item=item)
        for how in ("session", "token"):
            if how == "token" and not url.startswith("/api/"):
                continue
            headers = {"authorization": f"Bearer {token}"} if how == "token" else {}
            answer = browser.get(url, headers=headers)
            assert answer.status_code == (200 if person in allowed else 403), \
                (person, url, how, answer.text[:200])


def test_a_reviewer_cannot_reach_another_queue(site: Site,
                                               browsers: dict[str, Browser]) -> None:
    others = _items(site, "sam")
    assert others and not set(others) & set(_items(site, "rita"))
    rita = browsers["rita"]
    for url in (f"/review/items/{others[0]}", f"/api/v1/review/items/{others[0]}",
                f"/messages/{site.mail['to_dave']}"):
        answer = rita.get(url)
        assert answer.status_code == 404 and "Traceback" not in answer.text, url
    token = site.token("rita")
    refused = rita.post(f"/api/v1/review/items/{others[0]}/decision",
                        json={"decision": "no_issue"},
                        headers={"authorization": f"Bearer {token}"})
    assert refused.status_code == 404
    with site.vault.engine.connect() as conn:
        denied = {e.detail["action"] for e in audit.entries(conn)
                  if e.actor == "rita" and e.action == "denied"}
    assert {"review-item", "review-decide", "view"} <= denied


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_review_actions_by_role(site: Site, browsers: dict[str, Browser], person: str) -> None:
    """Tags and decisions, by form and by API: the reviewer only (the others 403, and
    nothing changes)."""
    browser = browsers[person]
    token = {"authorization": f"Bearer {site.token(person)}"}
    items = _items(site, "rita")
    allowed = person in QUEUE
    browser.get("/")
    tagged = browser.form(f"/review/items/{items[0]}/tags", tag=f"seen-{person}")
    assert tagged.status_code == (303 if allowed else 403), person
    api_tag = browser.post(f"/api/v1/review/items/{items[0]}/tags", json={"tag": "api"},
                           headers=token)
    assert api_tag.status_code == (200 if allowed else 403), person
    untag = browser.client.base_url.join(f"/api/v1/review/items/{items[0]}/tags/api")
    assert browser._send("DELETE", str(untag), headers=token).status_code == \
        (200 if allowed else 403)
    bulk = browser.post("/api/v1/review/decisions", headers=token,
                        json={"items": items, "decision": "violation"})
    assert bulk.status_code == (400 if allowed else 403), person  # the note is missing
    if not allowed:
        page = browser.form(f"/review/items/{items[0]}/decide", decision="no_issue")
        assert page.status_code == 403
        return
    one = browser.post(f"/api/v1/review/items/{items[0]}/decision", headers=token,
                       json={"decision": "no_issue"})
    assert one.status_code == 200 and one.json()["state"] == "no_issue"
    browser.get("/review")
    page = browser.post("/review/decide", data={"csrf": browser.csrf, "item": items[1:],
                                                "decision": "no_issue"},
                        headers={"origin": str(browser.client.base_url).rstrip("/")})
    assert page.status_code == 303
    assert {i.state for i in reviewing.queue(site.vault, Principal(
        "rita", frozenset({Role.REVIEWER})), include_decided=True)} == {"no_issue"}
    found = browser.get("/api/v1/search", params={"q": "tag:seen-rita"}).json()
    assert [m["id"] for m in found["messages"]] == [
        i.message_id for i in reviewing.queue(site.vault, Principal(
            "rita", frozenset({Role.REVIEWER})), include_decided=True) if i.id == items[0]]


def test_the_review_api_is_in_the_openapi_document(browsers: dict[str, Browser]) -> None:
    spec = browsers["audrey"].get("/api/v1/openapi.json").json()
    assert {"/api/v1/review/policies", "/api/v1/review/queue",
            "/api/v1/review/items/{item_id}", "/api/v1/review/items/{item_id}/decision",
            "/api/v1/review/decisions", "/api/v1/review/items/{item_id}/tags",
            "/api/v1/review/items/{item_id}/tags/{tag}", "/api/v1/review/reports",
            "/api/v1/review/reports.csv"} <= set(spec["paths"])
    assert not any(path.startswith("/review") for path in spec["paths"])
