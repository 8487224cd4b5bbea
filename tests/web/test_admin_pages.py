"""The administration pages and their API: users and roles (the last administrator stays),
SMTP users, retention policies, holds (the auditor's, shown on the message page), the
lifecycle, sources (the password sealed and never shown back); every form CSRF-checked, every
action audited under the person's name, every error one sentence."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailvault.sources import registry
from mailvault.store import audit
from tests.web.site import PASSWORD, Browser, Site, site_fixture

NEW_PASSWORD = "a brand new passphrase"
SOURCE_PASSWORD = "mailbox-Secret-4711"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


def signed_in(site: Site, name: str) -> Browser:
    browser = site.browser()
    assert browser.sign_in(name).status_code == 303
    browser.get("/admin" if name != "rita" else "/")  # a page that carries the CSRF token
    return browser


def actions(site: Site, actor: str) -> list[str]:
    with site.vault.engine.connect() as conn:
        return [e.action for e in audit.entries(conn) if e.actor == actor]


def notice(answer: httpx.Response) -> str:
    found = re.search(r'<p class="ok" id="notice">(.*?)</p>', answer.text, re.S)
    return html.unescape(found.group(1)) if found else ""


def error(answer: httpx.Response) -> str:
    found = re.search(r'<p class="error" id="error">(.*?)</p>', answer.text, re.S)
    assert found is not None, answer.text[:500]
    return html.unescape(found.group(1))


def follow(browser: Browser, answer: httpx.Response) -> httpx.Response:
    assert answer.status_code == 303, answer.text[:500]
    return browser.get(answer.headers["location"])


def test_the_index_shows_each_role_its_sections(site: Site) -> None:
    adam = signed_in(site, "adam").get("/admin")
    assert "/admin/users" in adam.text and "/admin/sources" in adam.text
    assert "/admin/holds" not in adam.text
    audrey = signed_in(site, "audrey").get("/admin")
    assert "/admin/holds" in audrey.text and "/admin/users" not in audrey.text
    assert 'id="nav-admin"' in audrey.text
    bob = signed_in(site, "bob")
    assert bob.get("/admin").status_code == 403
    assert 'id="nav-admin"' not in bob.get("/").text


def test_a_user_from_added_to_removed(site: Site) -> None:
    adam = signed_in(site, "adam")
    added = follow(adam, adam.form("/admin/users", name="Erin",
                                   roles=["user", "auditor"],  # type: ignore[arg-type]
                                   addresses="erin@example.org, erin@old.example.org",
                                   password=PASSWORD, password_again=PASSWORD))
    assert notice(added) == "User erin added."
    assert PASSWORD not in added.text
    assert 'value="auditor" checked' in added.text and 'value="user" checked' in added.text
    erin = site.browser()
    assert erin.sign_in("erin").status_code == 303

    changed = follow(adam, adam.form("/admin/users/erin", roles="user",
                                     addresses="erin@example.org"))
    assert notice(changed) == "User erin updated."
    assert 'value="auditor" checked' not in changed.text
    follow(adam, adam.form("/admin/users/erin/password", password=NEW_PASSWORD,
                           password_again=NEW_PASSWORD))
    assert site.browser().sign_in("erin").status_code == 401
    assert site.browser().sign_in("erin", NEW_PASSWORD).status_code == 303

    disabled = follow(adam, adam.form("/admin/users/erin/disable"))
    assert 'id="user-state">disabled' in disabled.text
    assert erin.get("/").status_code == 303  # the session ended with the account
    follow(adam, adam.form("/admin/users/erin/enable"))
    removed = follow(adam, adam.form("/admin/users/erin/remove"))
    assert notice(removed) == "User erin removed." and 'data-user="erin"' not in removed.text
    assert actions(site, "adam") == ["user-add", "user-update", "user-passwd", "user-disable",
                                     "user-enable", "user-remove"]


def test_the_last_enabled_administrator_stays(site: Site) -> None:
    adam = signed_in(site, "adam")
    follow(adam, adam.form("/admin/users/boss/disable"))
    for url, data in (("/admin/users/adam/remove", {}), ("/admin/users/adam/disable", {}),
                      ("/admin/users/adam", {"roles": "auditor"})):
        refused = adam.form(url, **data)
        assert refused.status_code == 400, url
        assert error(refused) == ("cannot " + {"remove": "remove", "disable": "disable"}.get(
            url.rsplit("/", 1)[1], "take the admin role from") + " adam: they are the last "
            "enabled administrator (make someone else admin first).")
    assert "user-remove" not in actions(site, "adam")


def test_wrong_input_is_one_sentence(site: Site) -> None:
    adam = signed_in(site, "adam")
    differ = adam.form("/admin/users", name="frank", roles="auditor", password=PASSWORD,
                       password_again=PASSWORD + "!")
    assert differ.status_code == 400
    assert error(differ) == "the two passwords differ: type the same password twice."
    taken = adam.form("/admin/users", name="bob", roles="auditor", password=PASSWORD,
                      password_again=PASSWORD)
    assert taken.status_code == 400 and error(taken) == "a user named 'bob' exists already."
    bad_port = adam.form("/admin/sources", kind="imap", name="x", host="h", user="u",
                         port="99x", password="p")
    assert error(bad_port) == "the port must be a whole number, not '99x'."
    for answer in (differ, taken, bad_port):
        assert "Traceback" not in answer.text


def test_forms_need_the_sessions_token_and_this_site(site: Site) -> None:
    adam = signed_in(site, "adam")
    without = adam.post("/admin/smtp-users", data={"name": "mta", "password": PASSWORD,
                                                   "password_again": PASSWORD})
    assert without.status_code == 403
    cross_site = adam.post("/admin/smtp-users", data={
        "csrf": adam.csrf, "name": "mta", "password": PASSWORD, "password_again": PASSWORD},
        headers={"origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert actions(site, "adam") == []


def test_smtp_users(site: Site) -> None:
    adam = signed_in(site, "adam")
    added = follow(adam, adam.form("/admin/smtp-users", name="mta", password=PASSWORD,
                                   password_again=PASSWORD))
    assert notice(added) == "SMTP user mta saved." and 'data-smtp-user="mta"' in added.text
    removed = follow(adam, adam.form("/admin/smtp-users/mta/remove"))
    assert 'data-smtp-user="mta"' not in removed.text
    assert actions(site, "adam") == ["smtp-user add", "smtp-user remove"]


def test_retention_policies(site: Site) -> None:
    adam = signed_in(site, "adam")
    added = follow(adam, adam.form("/admin/retention", name="corp", match="domain",
                                   value="corp.example.com", period="10y",
                                   counted_from="date"))
    assert notice(added).startswith("Retention policy corp added")
    assert 'data-policy="corp"' in added.text and "3650 days" in added.text
    default = follow(adam, adam.form("/admin/retention/default", period="8y",
                                     counted_from="archived"))
    assert notice(default) == "The default retention policy is now 2920 days from archived."
    follow(adam, adam.form("/admin/retention/recompute"))
    removed = follow(adam, adam.form("/admin/retention/corp/remove"))
    assert 'data-policy="corp"' not in removed.text
    bad = adam.form("/admin/retention", name="x", match="domain", value="a.b", period="soon")
    assert bad.status_code == 400 and "is not a period" in error(bad)
    assert actions(site, "adam") == ["retention-add", "retention-default", "retention-remove"]


def test_an_auditor_places_and_releases_a_hold(site: Site) -> None:
    audrey = signed_in(site, "audrey")
    to_dave = site.mail["to_dave"]
    assert 'id="not-held"' in audrey.get(f"/messages/{to_dave}").text
    placed = follow(audrey, audrey.form("/admin/holds", name="matter 7",
                                        custodian="dave@example.org", reason="subpoena",
                                        owner="legal"))
    assert notice(placed) == "Hold matter 7 (2 messages now) placed."
    message = audrey.get(f"/messages/{to_dave}")
    assert 'id="held"' in message.text and "matter 7" in message.text
    by_query = follow(audrey, audrey.form("/admin/holds", name="board", query="subject:board",
                                          since="2000-01-01", reason="audit", owner="cfo"))
    assert 'data-hold="board"' in by_query.text
    released = follow(audrey, audrey.form("/admin/holds/matter%207/release", note="settled"))
    assert "released by audrey" in released.text
    assert 'id="not-held"' in audrey.get(f"/messages/{to_dave}").text
    both = audrey.form("/admin/holds", name="x", custodian="a@b.c", query="lunch",
                       reason="r", owner="o")
    assert error(both) == "a hold names either a custodian address or a query (one of them)."
    assert [a for a in actions(site, "audrey") if a.startswith("hold")] == [
        "hold-place", "hold-place", "hold-release"]
    # An administrator without the auditor role neither sees holds nor places them.
    adam = signed_in(site, "adam")
    assert adam.get("/admin/holds").status_code == 403
    assert 'id="holds"' not in signed_in(site, "boss").get("/admin/retention").text


def test_the_lifecycle_page(site: Site) -> None:
    adam = signed_in(site, "adam")
    shown = adam.get("/admin/lifecycle")
    assert shown.status_code == 200 and "mailvault.toml" in shown.text
    moved = follow(adam, adam.form("/admin/lifecycle/move", query="subject:lunch",
                                   target="open"))
    assert notice(moved) == "Tier move done: job 1, 2 of 2 messages to open."
    ran = follow(adam, adam.form("/admin/lifecycle/run"))
    assert notice(ran).startswith("Lifecycle pass done: nothing moved")
    assert "tier-move" in actions(site, "adam")


def test_a_source_password_is_sealed_and_never_shown(site: Site) -> None:
    adam = signed_in(site, "adam")
    added = follow(adam, adam.form("/admin/sources", kind="pop3", name="shop",
                                   host="127.0.0.1", port="9", tls="none", user="clerk",
                                   password=SOURCE_PASSWORD, include="ignored*"))
    assert notice(added) == "Source shop added: test its connection, then sync it."
    assert SOURCE_PASSWORD not in added.text and 'data-source="shop"' in added.text
    spec = registry.get(site.vault, "shop")
    assert (spec.kind, spec.port, spec.include) == ("pop3", 9, ())
    assert registry.secret(site.vault, spec) == SOURCE_PASSWORD
    catalog_bytes = b"".join(p.read_bytes() for p in (site.vault.path).glob("catalog*"))
    assert SOURCE_PASSWORD.encode() not in catalog_bytes
    with site.vault.engine.connect() as conn:
        assert all(SOURCE_PASSWORD not in str(e.detail) for e in audit.entries(conn))
    tested = adam.form("/admin/sources/shop/test")
    assert tested.status_code == 200 and 'id="test-result" class="error"' in tested.text
    assert SOURCE_PASSWORD not in tested.text
    removed = follow(adam, adam.form("/admin/sources/shop/remove"))
    assert 'data-source="shop"' not in removed.text
    assert actions(site, "adam") == ["source-add", "source-test", "source-remove"]


def test_the_api_does_what_the_pages_do(site: Site) -> None:
    api = site.browser()
    admin = {"authorization": f"Bearer {site.token('adam')}"}
    auditor = {"authorization": f"Bearer {site.token('audrey')}"}
    made = api.post("/api/v1/users", headers=admin, json={
        "name": "gina", "roles": ["user"], "addresses": ["gina@example.org"],
        "password": PASSWORD})
    assert made.status_code == 201 and made.json()["addresses"] == ["gina@example.org"]
    assert "password" not in made.text
    patched = api.request("PATCH", "/api/v1/users/gina", headers=admin, json={"roles": ["auditor"]})
    assert patched.json()["roles"] == ["auditor"]
    assert api.request("DELETE", "/api/v1/users/gina", headers=admin).json()["removed"] == "gina"
    last = api.post("/api/v1/users/adam/disable", headers=admin)
    assert last.status_code == 200  # boss is still an enabled administrator
    # adam's own token stopped working with his account.
    assert api.request("DELETE", "/api/v1/users/boss", headers=admin).status_code == 401
    hold = api.post("/api/v1/holds", headers=auditor, json={
        "name": "api-hold", "query": "subject:lunch", "reason": "r", "owner": "o"})
    assert hold.status_code == 201 and hold.json()["messages"] == 2
    on_message = api.get(f"/api/v1/messages/{site.mail['to_bob']}/holds", headers=auditor)
    assert [h["name"] for h in on_message.json()["holds"]] == ["api-hold"]
    assert api.post("/api/v1/holds/api-hold/release", headers=auditor,
                    json={"note": "done"}).json()["active"] is False
    boss = {"authorization": f"Bearer {site.token('boss')}"}
    source = api.post("/api/v1/sources", headers=boss, json={
        "kind": "imap", "name": "desk", "host": "127.0.0.1", "user": "u",
        "password": SOURCE_PASSWORD, "tls": "starttls", "since": "2001-01-01"})
    assert source.status_code == 201 and SOURCE_PASSWORD not in source.text
    assert source.json()["source"]["since"] == "2001-01-01"
    assert [s["name"] for s in api.get("/api/v1/sources", headers=boss).json()["sources"]] \
        == ["desk"]
    policy = api.post("/api/v1/retention/policies", headers=boss, json={
        "name": "long", "match": "domain", "value": "example.org", "period": "10y"})
    assert policy.status_code == 201 and policy.json()["days"] == 3650
    assert api.request("PUT", "/api/v1/retention/default", headers=boss,
                   json={"period": "9y"}).json()["days"] == 3285
    assert api.get("/api/v1/lifecycle", headers=boss).json()["rules"]["open_after_days"] == 0
    assert api.post("/api/v1/smtp-users", headers=boss,
                    json={"name": "mta", "password": PASSWORD}).json()["new"] is True
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    for path in ("/api/v1/sources/{name}/test", "/api/v1/holds", "/api/v1/users/{name}",
                 "/api/v1/retention/policies/{name}", "/api/v1/smtp-users/{name}",
                 "/api/v1/tier-moves", "/api/v1/lifecycle/run"):
        assert path in paths, path
