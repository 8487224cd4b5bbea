"""Adding a source from the administration page and testing its connection against the real
test Dovecot: the right password logs in and counts the folders a sync would read, a wrong
one is reported in the server's words (with no password in them), and "sync now" brings the
mailbox's messages into the archive."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.sources import registry
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import new_mailbox
from tests.support import build_message
from tests.web.site import Browser, Site, site_fixture


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


def _add(adam: Browser, server: Dovecot, name: str, kind: str, user: str, password: str
         ) -> None:
    port = server.imap if kind == "imap" else server.pop3
    added = adam.form("/admin/sources", kind=kind, name=name, host="127.0.0.1",
                      port=str(port), tls="starttls", user=user, password=password,
                      ca_file=str(server.ca_file))
    assert added.status_code == 303, added.text[:300]


def _accounts(text: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", item)).strip()
            for item in re.findall(r'<li class="(?:ok|error)">(.*?)</li>', text, re.S)]


def test_add_test_and_sync_a_source_against_dovecot(
        site: Site, dovecot_server: Dovecot) -> None:
    mailbox = new_mailbox(dovecot_server)
    mailbox.fill({"INBOX": [build_message(subject=f"from dovecot {n}",
                                          message_id=f"<dv{n}@example.org>")
                            for n in range(3)],
                  "Projects/2024": [build_message(subject="nested folder")]})
    adam = site.browser()
    adam.sign_in("adam")
    adam.get("/admin/sources")
    _add(adam, dovecot_server, "dovecot", "imap", mailbox.address, mailbox.password)
    _add(adam, dovecot_server, "wrongpw", "imap", mailbox.address, "not-the-password")
    _add(adam, dovecot_server, "maildrop", "pop3", mailbox.address, mailbox.password)

    works = adam.form("/admin/sources/dovecot/test")
    assert works.status_code == 200 and 'id="test-result" class="ok"' in works.text
    # INBOX, Sent and Projects/2024 are read; Projects (not selectable), Junk and Trash
    # are not.
    assert _accounts(works.text) == [f"{mailbox.address}: logged in; 6 folders, 3 of them "
                                     "synced"]
    refused = adam.form("/admin/sources/wrongpw/test")
    assert 'id="test-result" class="error"' in refused.text
    assert "refused the login" in _accounts(refused.text)[0]
    assert "not-the-password" not in refused.text
    pop3 = adam.form("/admin/sources/maildrop/test")
    assert _accounts(pop3.text) == [f"{mailbox.address}: logged in; 3 messages in the "
                                    "maildrop"]

    synced = adam.form("/admin/sources/dovecot/sync")
    assert synced.status_code == 200
    assert re.search(r"dovecot: \w+ in [\d.]+ s:\s+4 archived", synced.text), synced.text
    assert registry.secret(site.vault, registry.get(site.vault, "dovecot")) \
        == mailbox.password
    assert mailbox.password not in synced.text + works.text
    listed = adam.get("/admin/sources")
    assert "4 archived" in listed.text


def test_an_oauth2_source_with_client_credentials_is_added_from_the_form(site: Site) -> None:
    adam = site.browser()
    adam.sign_in("adam")
    adam.get("/admin/sources")
    added = adam.form("/admin/sources", kind="imap", name="m365", host="outlook.office365.com",
                      tls="implicit", user="alice@contoso.com", password="app-secret",
                      auth="xoauth2", tenant="contoso.onmicrosoft.com", client_id="app-id")
    assert added.status_code == 303, added.text[:300]
    spec = registry.get(site.vault, "m365")
    assert (spec.oauth_flow, spec.client_id) == ("client-credentials", "app-id")
    assert spec.token_url == ("https://login.microsoftonline.com/contoso.onmicrosoft.com/"
                              "oauth2/v2.0/token")
    assert registry.secret(site.vault, spec) == "app-secret"
    assert "app-secret" not in adam.get("/admin/sources").text
