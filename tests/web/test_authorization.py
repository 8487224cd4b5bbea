"""Every route and every role: an auditor sees everything; an admin without auditor sees no
content at all; a reviewer sees exactly the messages of their review queues, and a user
exactly their own mail, by page, API, search count and facet count; another's message id
is "not found" and audited. The review routes (queue, items, decisions, tags, reports) are
checked for every role too."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from mailvault.accounts import users
from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Permission, Role, parse_roles, permissions_of
from mailvault.store import audit
from mailvault.usecases import restoring, reviewing
from mailvault.usecases.reviewing import PolicyDraft
from mailvault.web import (
    api_admin,
    pages_admin_compliance,
    pages_admin_gateway,
    pages_admin_people,
    pages_admin_sources,
)
from mailvault.web.background import Background
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
# The administrator's monitoring: every admin may look, nobody else (and no content shows).
MONITORS = {"adam", "boss"}
MONITORING_ROUTES = ("/monitoring", "/api/v1/monitoring", "/api/v1/failures", "/metrics")


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
        if visible is None and route == "/":
            # An administrator alone lands on the monitoring instead of an empty search.
            assert (answer.status_code, answer.headers["location"]) == (303, "/monitoring")
            continue
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


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_monitoring_routes(site: Site, browsers: dict[str, Browser], person: str) -> None:
    browser = browsers[person]
    token = {"authorization": f"Bearer {site.token(person)}"}
    allowed = person in MONITORS
    for route in MONITORING_ROUTES:
        for how in ("session", "token"):
            if how == "token" and route == "/monitoring":
                continue
            answer = browser.get(route, headers=token if how == "token" else {})
            assert answer.status_code == (200 if allowed else 403), (person, route, how)
            assert "Traceback" not in answer.text
    # Retrying: a failure that does not exist is "not found" for those who may retry.
    browser.get("/")
    assert browser.form("/monitoring/failures/999/retry").status_code == (
        404 if allowed else 403)
    answer = browser.post("/api/v1/failures/999/retry", headers=token)
    assert answer.status_code == (404 if allowed else 403), (person, answer.text)


def _sha(site: Site, message_id: int) -> str:
    raw = site.browser()
    raw.sign_in("audrey")
    return hashlib.sha256(raw.get(f"/api/v1/messages/{message_id}/raw").content).hexdigest()


# -- administration: every page and API route x every role -----------------------------------

P = Permission
# (method, url, form or JSON body, the permission it needs). Names that do not exist keep an
# allowed call harmless ("not found" after the role check); what creates something is named
# per person ({who}), so each allowed role's call succeeds on its own.
ADMIN_PAGES: list[tuple[str, str, dict[str, Any], Permission]] = [
    ("GET", "/admin/sources", {}, P.SOURCES),
    ("POST", "/admin/sources", {"kind": "pop3", "name": "src-{who}", "host": "127.0.0.1",
                                "user": "u", "password": ""}, P.SOURCES),
    ("POST", "/admin/sources/none/test", {}, P.SOURCES),
    ("POST", "/admin/sources/none/sync", {}, P.SOURCES),
    ("POST", "/admin/sources/none/remove", {}, P.SOURCES),
    ("GET", "/admin/retention", {}, P.RETENTION),
    ("POST", "/admin/retention", {"name": "", "match": "domain", "value": "a.b",
                                  "period": "1y"}, P.RETENTION),
    ("POST", "/admin/retention/default", {"period": "soon"}, P.RETENTION),
    ("POST", "/admin/retention/recompute", {}, P.RETENTION),
    ("POST", "/admin/retention/none/remove", {}, P.RETENTION),
    ("GET", "/admin/holds", {}, P.HOLDS),
    ("POST", "/admin/holds", {"name": "", "custodian": "a@b.c", "reason": "r", "owner": "o"},
     P.HOLDS),
    ("POST", "/admin/holds/none/release", {}, P.HOLDS),
    ("GET", "/admin/lifecycle", {}, P.LIFECYCLE),
    ("POST", "/admin/lifecycle/run", {}, P.LIFECYCLE),
    ("POST", "/admin/lifecycle/move", {"query": "", "target": "nowhere"}, P.LIFECYCLE),
    ("GET", "/admin/users", {}, P.USERS),
    ("GET", "/admin/users/adam", {}, P.USERS),
    ("POST", "/admin/users", {"name": "", "roles": "user", "password": "x",
                              "password_again": "x"}, P.USERS),
    ("POST", "/admin/users/none", {"roles": "auditor"}, P.USERS),
    ("POST", "/admin/users/none/password", {"password": "a long enough one",
                                            "password_again": "a long enough one"}, P.USERS),
    ("POST", "/admin/users/none/disable", {}, P.USERS),
    ("POST", "/admin/users/none/enable", {}, P.USERS),
    ("POST", "/admin/users/none/totp/remove", {}, P.USERS),
    ("POST", "/admin/users/none/remove", {}, P.USERS),
    ("GET", "/admin/smtp-users", {}, P.USERS),
    ("POST", "/admin/smtp-users", {"name": "", "password": "x", "password_again": "x"},
     P.USERS),
    ("POST", "/admin/smtp-users/none/remove", {}, P.USERS),
    ("GET", "/admin/gateway", {}, P.MONITOR),
    ("POST", "/admin/gateway/none/suspend", {}, P.SETTINGS),
    ("POST", "/admin/gateway/none/resume", {}, P.SETTINGS),
]
ADMIN_API: list[tuple[str, str, dict[str, Any] | None, Permission]] = [
    ("GET", "/api/v1/sources", None, P.SOURCES),
    ("POST", "/api/v1/sources", {"kind": "pop3", "name": "api-src-{who}",
                                 "host": "127.0.0.1", "user": "u", "password": "p"},
     P.SOURCES),
    ("GET", "/api/v1/sources/none", None, P.SOURCES),
    ("DELETE", "/api/v1/sources/none", None, P.SOURCES),
    ("POST", "/api/v1/sources/none/test", None, P.SOURCES),
    ("POST", "/api/v1/sources/none/sync", None, P.SOURCES),
    ("GET", "/api/v1/retention/policies", None, P.RETENTION),
    ("POST", "/api/v1/retention/policies", {"name": "p-{who}", "match": "domain",
                                            "value": "example.org", "period": "1y"},
     P.RETENTION),
    ("PUT", "/api/v1/retention/default", {"period": "soon"}, P.RETENTION),
    ("DELETE", "/api/v1/retention/policies/none", None, P.RETENTION),
    ("GET", "/api/v1/holds", None, P.HOLDS),
    ("POST", "/api/v1/holds", {"name": "h-{who}", "custodian": "nobody@example.net",
                               "reason": "r", "owner": "o"}, P.HOLDS),
    ("POST", "/api/v1/holds/none/release", {}, P.HOLDS),
    ("GET", "/api/v1/messages/{to_bob}/holds", None, P.HOLDS),
    ("GET", "/api/v1/lifecycle", None, P.LIFECYCLE),
    ("POST", "/api/v1/lifecycle/run", None, P.LIFECYCLE),
    ("POST", "/api/v1/tier-moves", {"query": "subject:nothing-matches-this", "to": "deep"},
     P.LIFECYCLE),
    ("GET", "/api/v1/users", None, P.USERS),
    ("POST", "/api/v1/users", {"name": "u-{who}", "roles": ["auditor"],
                               "password": "a long enough one"}, P.USERS),
    ("PATCH", "/api/v1/users/none", {"roles": ["auditor"]}, P.USERS),
    ("POST", "/api/v1/users/none/password", {"password": "a long enough one"}, P.USERS),
    ("POST", "/api/v1/users/none/disable", None, P.USERS),
    ("POST", "/api/v1/users/none/enable", None, P.USERS),
    ("DELETE", "/api/v1/users/none", None, P.USERS),
    ("GET", "/api/v1/smtp-users", None, P.USERS),
    ("POST", "/api/v1/smtp-users", {"name": "s-{who}", "password": "a long enough one"},
     P.USERS),
    ("DELETE", "/api/v1/smtp-users/none", None, P.USERS),
    ("GET", "/api/v1/gateway/mailboxes", None, P.MONITOR),
]


def _filled(value: Any, person: str, site: Site) -> Any:
    if isinstance(value, str):
        return value.replace("{who}", person).replace("{to_bob}", str(site.mail["to_bob"]))
    if isinstance(value, dict):
        return {k: _filled(v, person, site) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, person, site) for v in value]
    return value


def test_the_admin_tables_cover_every_admin_route() -> None:
    routes = {(method, route.path)
              for module in (pages_admin_sources, pages_admin_compliance, pages_admin_people,
                             pages_admin_gateway, api_admin)
              for route in module.router.routes if isinstance(route, APIRoute)
              for method in route.methods}
    listed = {(m, re.sub(r"/(none|adam|\d+)(?=/|$)", "/{x}", u))
              for m, u, _d, _p in ADMIN_PAGES + ADMIN_API}
    normal = {(m, re.sub(r"\{[^}]+\}", "{x}", p)) for m, p in routes}
    assert normal == {(m, re.sub(r"\{[^}]+\}", "{x}", u)) for m, u in listed}


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_admin_pages_by_role(site: Site, browsers: dict[str, Browser], person: str) -> None:
    browser = browsers[person]
    granted = permissions_of(parse_roles(PEOPLE[person][0]))
    wrong = []
    index = browser.get("/admin").status_code
    if index != (200 if granted & {P.SOURCES, P.RETENTION, P.HOLDS, P.LIFECYCLE, P.USERS}
                 else 403):
        wrong.append(f"GET /admin: {index}")
    for method, url, data, needed in ADMIN_PAGES:
        browser.get("/")  # the session's CSRF token, from any page
        answer = browser.get(url) if method == "GET" else browser.form(
            url, **_filled(data, person, site))
        allowed = needed in granted
        if allowed and (answer.status_code == 403 or answer.status_code >= 500):
            wrong.append(f"{method} {url}: {answer.status_code} for {person} (allowed)")
        if not allowed and answer.status_code != 403:
            wrong.append(f"{method} {url}: {answer.status_code} for {person} (refused)")
        assert "Traceback" not in answer.text
    assert wrong == []


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_admin_api_by_role(site: Site, person: str) -> None:
    client = site.browser()
    headers = {"authorization": f"Bearer {site.token(person)}"}
    granted = permissions_of(parse_roles(PEOPLE[person][0]))
    wrong = []
    for method, url, body, needed in ADMIN_API:
        answer = client.request(method, _filled(url, person, site), headers=headers,
                                json=_filled(body, person, site))
        allowed = needed in granted
        if allowed and (answer.status_code == 403 or answer.status_code >= 500):
            wrong.append(f"{method} {url}: {answer.status_code} {answer.text[:100]} "
                         f"for {person} (allowed)")
        if not allowed and answer.status_code != 403:
            wrong.append(f"{method} {url}: {answer.status_code} for {person} (refused)")
        if answer.status_code >= 400:
            assert set(answer.json()) == {"error"}
    # A browser session only reads: a change through the API needs a token.
    assert browsers_session_cannot_change(site)
    assert wrong == []


def browsers_session_cannot_change(site: Site) -> bool:
    boss = site.browser()
    boss.sign_in("boss")
    return boss.post("/api/v1/smtp-users", json={"name": "x", "password": "long enough"}
                     ).status_code == 401
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
# Who may restore: allowed ones start a restore that meets the closed port (failed, one
# sentence, in the run they follow); the rest 403 at once.
RESTORE = {"query": "", "imap": "127.0.0.1:1", "user": "someone", "password": "pw-never-kept",
           "tls": "implicit"}


def _restore_failed(site: Site, browser: Browser, person: str,
                    answer: httpx.Response) -> None:
    """The restore answered at once (202), ran in the job worker and failed there."""
    assert answer.status_code == 202, (person, answer.text[:200])
    assert answer.json()["state"] == "queued"
    site.app.state.web.background.wait_idle()
    run = browser.get(f"/api/v1/restores/{answer.json()['id']}", headers={
        "authorization": f"Bearer {site.token(person)}"}).json()
    assert run["state"] == "failed" and "unreachable" in run["error"], run


def test_restore_by_role(site: Site, browsers: dict[str, Browser]) -> None:
    expected = {"audrey": 202, "boss": 202, "adam": 403, "rita": 403, "bob": 403, "dave": 403}
    for person, status in expected.items():
        answer = browsers[person].post("/api/v1/restore", json=RESTORE, headers={
            "authorization": f"Bearer {site.token(person)}"})
        if status == 202:
            _restore_failed(site, browsers[person], person, answer)
        else:
            assert answer.status_code == status, (person, answer.text[:200])
    # A run is its starter's alone.
    assert browsers["boss"].get("/api/v1/restores/1", headers={
        "authorization": f"Bearer {site.token('boss')}"}).status_code == 404
    # A browser session does not change anything through the API without a token.
    assert browsers["audrey"].post("/api/v1/restore", json=RESTORE).status_code == 401
    with site.vault.engine.connect() as conn:
        restores = [e for e in audit.entries(conn) if e.action.startswith("restore")]
    assert {e.actor for e in restores} == {"audrey", "boss"}
    assert all("pw-never-kept" not in str(e.detail) for e in restores)
    site.vault.settings.restore.users_own_mail = True
    try:
        answer = browsers["bob"].post("/api/v1/restore", json=RESTORE, headers={
            "authorization": f"Bearer {site.token('bob')}"})
        _restore_failed(site, browsers["bob"], "bob", answer)
        assert browsers["adam"].post("/api/v1/restore", json=RESTORE, headers={
            "authorization": f"Bearer {site.token('adam')}"}).status_code == 403
    finally:
        site.vault.settings.restore.users_own_mail = False


def test_a_restores_state_outlives_the_serving_process(
        site: Site, browsers: dict[str, Browser]) -> None:
    """The API reads a restore from the catalog: a new job worker (what a restart of serve
    starts with) still shows it; one that worker never ran reads as interrupted."""
    token = {"authorization": f"Bearer {site.token('audrey')}"}
    web = site.app.state.web
    answer = browsers["audrey"].post("/api/v1/restore", json=RESTORE, headers=token)
    web.background.wait_idle()
    ran = answer.json()["id"]
    kept = web.background
    web.background = Background()
    try:
        run = browsers["audrey"].get(f"/api/v1/restores/{ran}", headers=token).json()
        assert run["state"] == "failed" and run["runs"] >= 1 and "unreachable" in run["error"]
        queued = restoring.queue_restore(site.vault, Principal("audrey", frozenset(
            {Role.AUDITOR})), "lunch", restoring.target("127.0.0.1:1", "implicit", "someone"),
            restoring.folder_mode("keep"))
        lost = browsers["audrey"].get(f"/api/v1/restores/{queued.id}", headers=token).json()
        assert lost["state"] == "interrupted" and lost["query"] == "lunch"
        page = browsers["audrey"].get("/restore").text
        assert 'class="state">interrupted<' in page and 'class="state">failed<' in page
    finally:
        web.background = kept


def test_restore_page_by_role(site: Site, browsers: dict[str, Browser]) -> None:
    for person, status in (("audrey", 200), ("boss", 200), ("adam", 403), ("rita", 403),
                           ("bob", 403), ("dave", 403)):
        browser = browsers[person]
        assert browser.get("/restore?q=lunch").status_code == status, person
        if VISIBLE[person] is not None:
            linked = 'id="restore-link"' in browser.get("/?q=lunch").text
            assert linked == (status == 200), person
    audrey = browsers["audrey"]
    audrey.get("/")
    fields = {k: v for k, v in RESTORE.items() if k != "query"}
    answer = audrey.form("/restore", q="lunch", folder_mode="keep", **fields)
    assert answer.status_code == 303  # answered at once; the job worker restores
    site.app.state.web.background.wait_idle()
    page = audrey.get(answer.headers["location"])
    assert 'class="state">failed<' in page.text and "unreachable" in page.text
    assert "pw-never-kept" not in page.text
    assert "<code>lunch</code>" in page.text  # audrey's run, which boss does not see
    assert "<code>lunch</code>" not in browsers["boss"].get("/restore").text
    refused = browsers["bob"]
    refused.get("/")
    assert refused.form("/restore", q="", folder_mode="keep", **fields).status_code == 403


# The eDiscovery API: an auditor (audrey, boss) only; every other role is refused (403),
# by session (reading) and by token (reading and starting).
DISCOVERY_READ = ("/api/v1/cases", "/api/v1/exports")


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_discovery_api_by_role(site: Site, browsers: dict[str, Browser], person: str) -> None:
    auditor = person in ("audrey", "boss")  # the two who search every message
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
        # The job runs in the application's job worker, not in the request.
        site.app.state.web.background.wait_idle()
        state = browsers[person].get(f"/api/v1/exports/{job['id']}").json()
        assert state["state"] == state["progress"] == "done"
        assert state["done"] == 2 and len(state["summary_sha256"]) == 64
    else:
        assert browsers[person].get("/api/v1/exports/1").status_code == 403
        assert browsers[person].get("/api/v1/cases/anything").status_code == 403
