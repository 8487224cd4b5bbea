"""Sign-in through an OpenID Connect provider that the test runs on loopback: the e-mail
claim of a verified id_token signs in the existing user with that address; nobody is
created, and a forged token, a foreign answer or an unknown address is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey

from mailvault.accounts import users
from mailvault.store import audit
from tests.web.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.web.site import Browser, Site, site_fixture


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture
def site(tmp_path: Path, provider: Provider) -> Iterator[Site]:
    secret = tmp_path / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    yield from site_fixture(tmp_path, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                            oidc_client_secret_file=str(secret), oidc_name="Test IdP")


def through_provider(browser: Browser) -> httpx.Response:
    """Start at the archive, pass the provider (a real HTTP request), come back."""
    start = browser.get("/login/oidc?next=/%3Fq%3Dlunch")
    assert start.status_code == 303
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302
    back = httpx.URL(at_provider.headers["location"])
    assert back.path == "/login/oidc/callback"
    return browser.get(f"{back.path}?{back.query.decode()}")


def test_the_login_page_offers_the_provider(site: Site) -> None:
    assert "Sign in with Test IdP" in site.browser().get("/login").text


def test_the_email_claim_signs_in_the_user_with_that_address(site: Site,
                                                             provider: Provider) -> None:
    browser = site.browser()
    done = through_provider(browser)
    assert done.status_code == 200 and 'url=/?q=lunch' in done.text
    page = browser.get("/?q=lunch")
    assert page.status_code == 200 and 'id="who">bob<' in page.text
    assert provider.token_requests == 1
    with site.vault.engine.connect() as conn:
        logins = [e.detail for e in audit.entries(conn) if e.action == "login"]
    assert any("provider" in str(detail) and "bob" in str(detail) for detail in logins)


def test_an_unknown_address_creates_nobody(site: Site, provider: Provider) -> None:
    provider.email = "stranger@example.net"
    before = {u.name for u in users.list_users(site.vault)}
    browser = site.browser()
    refused = through_provider(browser)
    assert refused.status_code == 401 and "mv_session" not in browser.client.cookies
    assert {u.name for u in users.list_users(site.vault)} == before


def test_an_unverified_address_is_refused(site: Site, provider: Provider) -> None:
    provider.email_verified = False
    assert through_provider(site.browser()).status_code == 401


def test_a_token_signed_by_another_key_is_refused(site: Site, provider: Provider) -> None:
    provider.forger = RSAKey.generate_key(2048, {"kid": "test"})
    browser = site.browser()
    assert through_provider(browser).status_code == 401
    assert "mv_session" not in browser.client.cookies


def test_an_answer_meant_for_another_browser_is_refused(site: Site) -> None:
    victim, attacker = site.browser(), site.browser()
    start = attacker.get("/login/oidc")
    back = httpx.URL(httpx.get(start.headers["location"]).headers["location"])
    refused = victim.get(f"{back.path}?{back.query.decode()}")
    assert refused.status_code == 401 and "mv_session" not in victim.client.cookies
