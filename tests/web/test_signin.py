"""Signing in and out: sessions kept server-side (only a hash of the token), cookie flags,
TOTP, the per-address rate limit, CSRF on every state-changing form, sessions ended by
timeouts or by disabling the user, and API bearer tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from mailvault.accounts import sessions, users
from mailvault.store import audit, schema
from tests.support import catalog_bytes
from tests.web.site import ACTOR, PASSWORD, Site, site_fixture


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


def audit_actions(site: Site) -> list[tuple[str, str]]:
    with site.vault.engine.connect() as conn:
        return [(e.actor, e.action) for e in audit.entries(conn)]


def test_pages_need_a_session(site: Site) -> None:
    browser = site.browser()
    answer = browser.get("/?q=lunch")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F%3Fq%3Dlunch"


def test_sign_in_keeps_only_a_hash_of_the_session_token(site: Site) -> None:
    browser = site.browser()
    answer = browser.sign_in("audrey")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = browser.client.cookies["mv_session"]
    with site.vault.engine.connect() as conn:
        stored = conn.execute(select(schema.web_sessions.c.token_hash)).scalars().all()
    assert stored == [hashlib.sha256(cookie.encode()).hexdigest()]
    assert cookie.encode() not in catalog_bytes(site.vault.path)
    page = browser.get("/")
    assert page.status_code == 200 and 'id="who">audrey<' in page.text
    assert ("web:127.0.0.1", "login") in audit_actions(site)


def test_the_session_cookie_flags(site: Site, tmp_path: Path) -> None:
    answer = site.browser().sign_in("audrey")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    site.app.state.web.secure = True
    tls = site.browser(https=True).sign_in("audrey")
    session_cookie = next(v for k, v in tls.headers.multi_items()
                          if k == "set-cookie" and v.startswith("mv_session="))
    assert "secure" in session_cookie.lower() and "httponly" in session_cookie.lower()


def test_a_wrong_password_is_one_sentence_and_no_session(site: Site) -> None:
    browser = site.browser()
    answer = browser.sign_in("audrey", "wrong password!")
    assert answer.status_code == 401
    assert "sign-in refused" in answer.text and "Traceback" not in answer.text
    assert "mv_session" not in browser.client.cookies


def test_totp_sign_in_asks_for_the_code(site: Site) -> None:
    uri = users.enable_totp(site.vault, "audrey", ACTOR)
    secret = pyotp.parse_uri(uri).secret
    browser = site.browser()
    step = browser.sign_in("audrey")
    assert step.status_code == 200 and 'name="code"' in step.text
    assert PASSWORD not in step.text
    ticket = step.text.split('name="ticket" value="')[1].split('"')[0]
    wrong = browser.post("/login/code", data={"ticket": ticket, "code": "000000",
                                              "csrf": browser.csrf})
    assert wrong.status_code == 401
    # A ticket is used once: the next try starts again with the password.
    step = browser.sign_in("audrey")
    ticket = step.text.split('name="ticket" value="')[1].split('"')[0]
    done = browser.post("/login/code", data={"ticket": ticket,
                                             "code": pyotp.TOTP(secret).now(),
                                             "csrf": browser.csrf})
    assert done.status_code == 303 and "mv_session" in browser.client.cookies
    # The ticket is bound to the client address that proved the password.
    other = site.browser("198.51.100.9")
    step = other.sign_in("audrey")
    ticket = step.text.split('name="ticket" value="')[1].split('"')[0]
    thief = site.browser("203.0.113.66")
    thief.get("/login")
    stolen = thief.post("/login/code", data={"ticket": ticket, "code": "123456",
                                             "csrf": thief.csrf})
    assert stolen.status_code == 401


def test_sign_in_is_rate_limited_per_client_address(site: Site) -> None:
    site.app.state.web.throttle.attempts = 3
    guesser = site.browser("203.0.113.7")
    for name in ("bob", "dave", "rita"):
        assert guesser.sign_in(name, "not the password").status_code == 401
    refused = guesser.sign_in("audrey")
    assert refused.status_code == 429 and "too many sign-in attempts" in refused.text
    assert "mv_session" not in guesser.client.cookies
    assert ("web:203.0.113.7", "login-throttled") in audit_actions(site)
    # Another address is not affected.
    assert site.browser("203.0.113.8").sign_in("audrey").status_code == 303


def test_a_cross_site_form_post_is_refused(site: Site) -> None:
    browser = site.browser()
    browser.sign_in("audrey")
    browser.get("/")
    # Another site cannot know the token...
    forged = browser.post("/logout", data={}, headers={"origin": "https://evil.example"})
    assert forged.status_code == 403
    # ...and even with it, a post that says it comes from another site is refused.
    forged = browser.post("/logout", data={"csrf": browser.csrf},
                          headers={"origin": "https://evil.example",
                                   "sec-fetch-site": "cross-site"})
    assert forged.status_code == 403
    assert browser.get("/").status_code == 200  # still signed in
    # The sign-in form needs its own token too (no signing a browser in from elsewhere).
    fresh = site.browser()
    assert fresh.post("/login", data={"username": "audrey", "password": PASSWORD}
                      ).status_code == 403
    assert browser.form("/logout").status_code == 303
    assert browser.get("/").status_code == 303


def test_signing_out_ends_the_session_for_good(site: Site) -> None:
    browser = site.browser()
    browser.sign_in("audrey")
    token = browser.client.cookies["mv_session"]
    browser.get("/")
    browser.form("/logout")
    replay = site.browser()
    replay.client.cookies.set("mv_session", token)
    assert replay.get("/").status_code == 303
    assert ("audrey", "logout") in audit_actions(site)


def test_idle_and_absolute_timeouts(site: Site) -> None:
    new = sessions.start(site.vault, "audrey", "test", at=1000)
    with pytest.raises(Exception, match="ended"):
        sessions.current(site.vault, new.token, idle_s=60, max_age_s=3600, at=1061)
    new = sessions.start(site.vault, "audrey", "test", at=1000)
    for at in range(1000, 3600, 50):  # busy, never idle...
        sessions.current(site.vault, new.token, idle_s=60, max_age_s=3600, at=at)
    with pytest.raises(Exception, match="ended"):  # ...but too old
        sessions.current(site.vault, new.token, idle_s=60, max_age_s=3600, at=4601)


def test_disabling_a_user_signs_them_out_at_the_next_request(site: Site) -> None:
    browser = site.browser()
    browser.sign_in("bob")
    assert browser.get("/").status_code == 200
    users.disable_user(site.vault, "bob", ACTOR)
    assert browser.get("/").status_code == 303


def test_after_sign_in_only_a_local_page_is_next(site: Site) -> None:
    browser = site.browser()
    browser.get("/login")
    answer = browser.post("/login", data={"username": "audrey", "password": PASSWORD,
                                          "csrf": browser.csrf,
                                          "next": "//evil.example/"})
    assert answer.headers["location"] == "/"


def test_bearer_tokens_for_the_api(site: Site) -> None:
    token = site.token("audrey")
    api = site.browser()
    answer = api.get("/api/v1/search", params={"q": "lunch"},
                     headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["total"] == 2
    refused = api.get("/api/v1/search", headers={"authorization": "Bearer mvt_nope"})
    assert refused.status_code == 401 and refused.json() == {"error": refused.json()["error"]}
    assert api.get("/api/v1/search").status_code == 401
    users.disable_user(site.vault, "audrey", ACTOR)
    assert api.get("/api/v1/search", headers={"authorization": f"Bearer {token}"}
                   ).status_code == 401


def test_the_api_takes_a_session_for_reading_only(site: Site) -> None:
    browser = site.browser()
    browser.sign_in("audrey")
    assert browser.get("/api/v1/search?q=lunch").json()["total"] == 2
    mail_id = site.mail["to_bob"]
    assert browser.post(f"/api/v1/messages/{mail_id}/verify").status_code == 401
