"""OAuth2 IMAP logins (XOAUTH2, OAUTHBEARER) against a real Dovecot whose ``oauth2`` passdb
asks a token introspection endpoint this test runs on loopback: tokens from client
credentials, from a token command, and per mailbox through a service account's delegation;
an expired token fetched again; a refused token as one sentence, recorded, and tried again
by the next sync; secrets never stored in clear nor shown."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailvault.errors import ConfigError, InputError, SourceError
from mailvault.sources import registry, scope
from mailvault.sources.definitions import (
    GOOGLE_SCOPE,
    MICROSOFT_SCOPE,
    SourceSpec,
    build,
    from_toml,
)
from mailvault.sources.imap import ImapSession
from mailvault.sources.oauth import REFRESH_MARGIN_S, EndpointTokens
from mailvault.store import schema
from mailvault.vault import Vault
from tests.sources import dovecot
from tests.sources.dovecot import DOMAIN, Dovecot
from tests.sources.mailboxes import Mailbox, new_mailbox, sha256
from tests.sources.oauth_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    DOVECOT_EXTRA,
    Provider,
    dovecot_files,
    running_provider,
)
from tests.sources.support import message_hashes, per_folder, run_sync
from tests.support import catalog_bytes, invoke, write_settings

# A script a source names as its token command: prints the token this test issued for the
# mailbox in MAILVAULT_OAUTH_USER (what a real one gets from its refresh token).
TOKEN_SCRIPT = """\
import json, os, sys
tokens = json.load(open(sys.argv[1]))
user = os.environ["MAILVAULT_OAUTH_USER"]
if user not in tokens:
    sys.exit("no token for " + user)
print(tokens[user])
"""


@pytest.fixture(scope="module")
def oauth_dovecot() -> Iterator[tuple[Provider, Dovecot]]:
    """A loopback authorization server and a Dovecot that checks tokens with it."""
    with running_provider() as provider:
        server = dovecot.start(extra=DOVECOT_EXTRA, files=dovecot_files(provider))
        try:
            yield provider, server
        finally:
            dovecot.remove(server)


@pytest.fixture
def provider(oauth_dovecot: tuple[Provider, Dovecot]) -> Provider:
    """The authorization server, as a test starts it: everything valid, nothing asked."""
    found = oauth_dovecot[0]
    found.mailbox, found.dead_first, found.refuse, found.expires_in = "", 0, False, 3600
    found.grants.clear()
    return found


@pytest.fixture
def server(oauth_dovecot: tuple[Provider, Dovecot]) -> Dovecot:
    return oauth_dovecot[1]


@pytest.fixture
def filled(server: Dovecot, messages: list[bytes]) -> Callable[[int, int], Mailbox]:
    """A new mailbox holding messages[start:end] in its INBOX."""
    def make(start: int, end: int) -> Mailbox:
        box = new_mailbox(server)
        box.fill({"INBOX": messages[start:end]})
        return box
    return make


def add(vault: Vault, server: Dovecot, user: str, secret: str, **settings: Any) -> SourceSpec:
    values: dict[str, Any] = {"name": f"oauth{len(registry.all_sources(vault))}",
                              "kind": "imap", "host": "127.0.0.1", "port": server.imap,
                              "tls": "starttls", "ca_file": str(server.ca_file), "user": user,
                              "auth": "xoauth2", **settings}
    spec = build(values)
    registry.add(vault, spec, secret, "test")
    return spec


def client_credentials(provider: Provider) -> dict[str, str]:
    return {"client_id": CLIENT_ID, "token_url": provider.token_url,
            "oauth_scope": "imap.test"}


def test_client_credentials_read_the_mailbox_with_one_token_and_keep_the_secret_sealed(
        vault: Vault, provider: Provider, server: Dovecot, messages: list[bytes],
        filled: Callable[[int, int], Mailbox]) -> None:
    owner = filled(0, 3)
    provider.mailbox = owner.address
    spec = add(vault, server, owner.address, CLIENT_SECRET, **client_credentials(provider))
    assert spec.oauth_flow == "client-credentials"

    report = run_sync(vault, spec)
    assert report.status == "ok" and report.totals()["archived"] == 3, report.errors
    assert message_hashes(vault) == {sha256(m) for m in messages[0:3]}
    assert provider.grants == ["client:imap.test"]
    assert f"user=<{owner.address}>, method=XOAUTH2" in server.log()

    stored = catalog_bytes(vault.path)
    assert CLIENT_SECRET.encode() not in stored
    assert not any(token.encode() in stored for token in provider.tokens)
    assert registry.secret(vault, spec) == CLIENT_SECRET


def test_a_token_command_logs_each_mailbox_in_with_oauthbearer(
        vault: Vault, provider: Provider, server: Dovecot, messages: list[bytes],
        filled: Callable[[int, int], Mailbox], tmp_path: Path) -> None:
    first, second = filled(3, 5), filled(5, 6)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({b.address: provider.issue(b.address)
                                  for b in (first, second)}))
    script = tmp_path / "token.py"
    script.write_text(TOKEN_SCRIPT)
    users = tmp_path / "users"
    users.write_text(f"{first.address}\n{second.address}\n")
    spec = add(vault, server, "archiver", "", auth="oauthbearer", scope="users",
               users_file=str(users),
               token_command=f"{sys.executable} {script} {tokens}")
    assert spec.oauth_flow == "command" and not spec.needs_secret

    report = run_sync(vault, spec)
    assert report.status == "ok", report.errors
    assert per_folder(vault, spec.name) == {(first.address, "INBOX"): 2,
                                            (second.address, "INBOX"): 1}
    assert f"user=<{second.address}>, method=OAUTHBEARER" in server.log()
    assert provider.grants == []


def test_a_service_account_gets_a_token_per_mailbox_of_the_domain(
        vault: Vault, provider: Provider, server: Dovecot,
        filled: Callable[[int, int], Mailbox], tmp_path: Path) -> None:
    first, second = filled(6, 8), filled(8, 9)
    users = tmp_path / "users"
    users.write_text(f"{first.address.split('@')[0]}\n{second.address}\nother@elsewhere.example\n")
    key = json.dumps(provider.service_account_key())
    spec = add(vault, server, "archiver", key, scope="domain", domain=DOMAIN,
               users_file=str(users), oauth_flow="service-account")
    assert spec.oauth_scope == GOOGLE_SCOPE

    report = run_sync(vault, spec)
    assert report.status == "ok", report.errors
    assert per_folder(vault, spec.name) == {(first.address, "INBOX"): 2,
                                            (second.address, "INBOX"): 1}
    assert sorted(provider.grants) == sorted(f"sub:{b.address}:{GOOGLE_SCOPE}"
                                             for b in (first, second))
    stored = catalog_bytes(vault.path)
    assert b"PRIVATE KEY" not in stored


def test_an_expired_token_is_fetched_again_and_the_sync_goes_on(
        vault: Vault, provider: Provider, server: Dovecot, messages: list[bytes],
        filled: Callable[[int, int], Mailbox]) -> None:
    owner = filled(9, 11)
    provider.mailbox = owner.address
    # The first token is dead at the server although its lifetime says otherwise (it
    # expired early, or was revoked): the login is refused, the token dropped, a new one
    # fetched for the reconnection.
    provider.dead_first = 1
    vault.settings.sync.backoff_s = 0.01
    spec = add(vault, server, owner.address, CLIENT_SECRET, **client_credentials(provider))

    report = run_sync(vault, spec)
    assert report.status == "ok" and report.totals()["archived"] == 2, report.errors
    assert len(provider.grants) == 2
    [(account, why)] = report.retries
    assert account == owner.address and "refused the OAuth2 access token" in why


def test_a_refused_token_is_one_sentence_a_recorded_failure_and_retried_next_time(
        vault: Vault, provider: Provider, server: Dovecot, messages: list[bytes],
        filled: Callable[[int, int], Mailbox]) -> None:
    owner = filled(11, 13)
    provider.mailbox, provider.refuse = owner.address, True
    vault.settings.sync.retries, vault.settings.sync.backoff_s = 1, 0.01
    spec = add(vault, server, owner.address, CLIENT_SECRET, **client_credentials(provider))

    report = run_sync(vault, spec)
    assert report.status == "failed"
    why = report.errors[owner.address]
    assert why == (f"127.0.0.1:{server.imap} refused the OAuth2 access token for "
                   f"{owner.address} ([AUTHENTICATIONFAILED] Authentication failed.): it has "
                   "expired or been revoked, or it does not grant IMAP access to this "
                   "mailbox.")
    assert not any(token in why for token in provider.tokens)
    with vault.engine.connect() as conn:
        recorded = conn.execute(select(schema.source_runs.c.status, schema.source_runs.c.error)
                                .where(schema.source_runs.c.source == spec.name)).one()
    assert tuple(recorded) == ("failed", why)
    [account] = scope.accounts_of(vault, spec)
    with pytest.raises(SourceError) as refused:
        ImapSession(scope.endpoint(spec, vault.settings.sync), account.credentials)
    assert refused.value.retryable

    provider.refuse = False
    again = run_sync(vault, spec)
    assert again.status == "ok" and again.totals()["archived"] == 2, again.errors


def test_a_token_endpoint_refusing_the_client_says_why_without_the_secret(
        vault: Vault, provider: Provider, server: Dovecot,
        filled: Callable[[int, int], Mailbox]) -> None:
    owner = filled(13, 14)
    spec = add(vault, server, owner.address, "wrong-" + CLIENT_SECRET,
               **client_credentials(provider))
    report = run_sync(vault, spec)
    why = report.errors[owner.address]
    assert why == (f"the token endpoint {provider.url.split('//')[1]} issued no token (HTTP "
                   "401: invalid_client the client secret is wrong).")
    assert CLIENT_SECRET not in why


def test_a_failing_token_command_is_one_sentence(
        vault: Vault, server: Dovecot, tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text(TOKEN_SCRIPT)
    missing = tmp_path / "none.json"
    missing.write_text("{}")
    spec = add(vault, server, "nobody@example.org", "",
               token_command=f"{sys.executable} {script} {missing}")
    vault.settings.sync.retries = 0
    report = run_sync(vault, spec)
    assert report.errors["nobody@example.org"] == (
        f"the token command {sys.executable} failed with exit status 1 "
        "(no token for nobody@example.org).")


def test_tokens_are_fetched_again_before_they_expire() -> None:
    now = [1000.0]
    fetched: list[str] = []

    def fetch() -> tuple[str, float | None]:
        fetched.append(f"t{len(fetched)}")
        return fetched[-1], 3600.0

    tokens = EndpointTokens(fetch, clock=lambda: now[0])
    assert tokens.token() == tokens.token() == "t0"
    now[0] += 3600 - REFRESH_MARGIN_S - 1
    assert tokens.token() == "t0"
    now[0] += 1
    assert tokens.token() == "t1"
    tokens.refused("t0")  # an older token refused: the current one stays
    assert tokens.token() == "t1"
    tokens.refused("t1")
    assert tokens.token() == "t2"


def test_oauth_definitions_are_checked() -> None:
    base = {"name": "m365", "kind": "imap", "host": "outlook.office365.com", "user": "a@b.c",
            "auth": "xoauth2"}
    spec = build({**base, "tenant": "contoso.onmicrosoft.com", "client_id": "app"})
    assert spec.token_url == ("https://login.microsoftonline.com/contoso.onmicrosoft.com/"
                              "oauth2/v2.0/token")
    assert (spec.oauth_flow, spec.oauth_scope) == ("client-credentials", MICROSOFT_SCOPE)
    assert "tenant" not in spec.to_json()
    refusals = {
        "POP3": {**base, "kind": "pop3"},
        "plain http": {**base, "client_id": "app", "token_url": "http://idp.example/token"},
        "both": {**base, "client_id": "app", "tenant": "t", "token_command": "get-token"},
        "no client id": {**base, "oauth_flow": "client-credentials",
                         "token_url": "https://idp.example/token"},
        "not oauth": {**base, "auth": "login", "token_command": "get-token"},
        "tenant without oauth": {**base, "auth": "login", "tenant": "t"},
        "no way to a token": base,
    }
    for label, values in refusals.items():
        with pytest.raises(ConfigError):
            build(values)
            pytest.fail(label)
    assert build({**base, "client_id": "app",
                  "token_url": "http://127.0.0.1:8080/token"}).token_url


def test_a_toml_oauth_source_reads_its_secret_from_a_file(vault: Vault, tmp_path: Path
                                                          ) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("from-the-file\n")
    write_settings(
        vault.path, '[sources.m365]\nkind = "imap"\nhost = "outlook.office365.com"\n'
        'user = "a@contoso.com"\nauth = "xoauth2"\ntenant = "contoso.com"\n'
        f'client_id = "app"\nsecret_file = "{secret}"\n')
    [spec] = from_toml(vault.path)
    assert registry.secret(vault, spec) == "from-the-file"
    write_settings(
        vault.path, '[sources.m365]\nkind = "imap"\nhost = "outlook.office365.com"\n'
        'user = "a@contoso.com"\nauth = "xoauth2"\ntenant = "contoso.com"\nclient_id = "app"\n')
    with pytest.raises(ConfigError, match="needs a secret_file"):
        from_toml(vault.path)


def test_the_command_line_adds_tests_and_shows_an_oauth_source(
        tmp_path: Path, provider: Provider, server: Dovecot,
        filled: Callable[[int, int], Mailbox]) -> None:
    owner = filled(14, 15)
    provider.mailbox = owner.address
    vault = tmp_path / "v"
    assert invoke("init", "--vault", vault).exit_code == 0
    secret = tmp_path / "secret"
    secret.write_text(CLIENT_SECRET + "\n")
    common = ["--vault", vault, "--host", "127.0.0.1", "--port", str(server.imap),
              "--tls", "starttls", "--ca-file", server.ca_file, "--user", owner.address]
    added = invoke("source", "add", "imap", "work", *common, "--auth", "oauthbearer",
                   "--client-id", CLIENT_ID, "--token-url", provider.token_url,
                   "--client-secret-file", secret)
    assert added.exit_code == 0, added.text
    tested = invoke("source", "test", "work", "--vault", vault, "--json")
    assert tested.exit_code == 0 and tested.json()["ok"] is True, tested.text
    shown = invoke("source", "show", "work", "--vault", vault, "--json")
    assert shown.json()["oauth_flow"] == "client-credentials"
    assert shown.json()["client_id"] == CLIENT_ID
    everything = added.stdout + tested.stdout + shown.stdout
    assert CLIENT_SECRET.encode() not in everything
    assert not any(t.encode() in everything for t in provider.tokens)

    with pytest.raises(InputError, match="an OAuth2 source has no password"):
        invoke("source", "add", "imap", "other", *common, "--auth", "xoauth2",
               "--token-command", "get-token", "--password-file", secret)
