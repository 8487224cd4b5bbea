"""The SMTP proxy end to end on loopback: smtplib as the mail client, Postfix submission with
Dovecot SASL as the provider, a gateway mailbox for the copies."""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailvault.config import Settings
from mailvault.gateway.mailboxes import SUSPENDED, GatewayMailboxes
from mailvault.vault import Vault
from tests.capture.conftest import Running
from tests.gateway.smtp_providers import (
    REFUSAL_TEXT,
    REFUSED_SUBJECT,
    PlainProvider,
    Provider,
    RunningProxy,
    running_proxy,
    start_provider,
    stop_provider,
)
from tests.support import build_message

USER = "alice@example.org"
PASSWORD = "alice-provider-secret"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    running = start_provider()
    running.dovecot.add_user(USER, PASSWORD)
    yield running
    stop_provider(running)


@pytest.fixture
def mailboxes(tmp_path: Path) -> GatewayMailboxes:
    return GatewayMailboxes(tmp_path / "gateway", "gw.example.org")


def _settings(provider: Provider, allow: list[str]) -> Settings:
    settings = Settings()
    settings.gateway.tls_cert = str(provider.dovecot.dir / "cert.pem")
    settings.gateway.tls_key = str(provider.dovecot.dir / "key.pem")
    settings.gateway.ca_file = str(provider.ca_file)
    settings.gateway.upstream_allow = allow
    return settings


@pytest.fixture
def proxy(provider: Provider, mailboxes: GatewayMailboxes) -> Iterator[RunningProxy]:
    with running_proxy(_settings(provider, ["127.0.0.1"]), mailboxes) as running:
        yield running


def _client(port: int, ca_file: Path) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.starttls(context=ssl.create_default_context(cafile=str(ca_file)))
    return client


def _message(subject: str) -> bytes:
    raw = build_message(subject=subject, body="Quarterly figures attached, see page 3.\n",
                        sender=USER, to=["bob@elsewhere.example"])
    return raw.replace(b"\n", b"\r\n")  # as smtplib sends it


def test_a_sent_message_is_relayed_and_kept_once_encrypted(
        proxy: RunningProxy, provider: Provider, mailboxes: GatewayMailboxes) -> None:
    info, mailbox_password = mailboxes.create("alice's sent mail")
    raw = _message("proxied one")
    with _client(proxy.port, provider.ca_file) as client:
        client.login(f"{USER}%127.0.0.1:{provider.port}%{info.id}", PASSWORD)
        assert client.sendmail(USER, ["bob@elsewhere.example"], raw) == {}
    opened = mailboxes.unlock(info.id, mailbox_password)
    (stored,) = opened.messages()
    assert opened.read(stored.id) == raw
    folder = mailboxes.folder / info.id
    assert not any(b"Quarterly" in path.read_bytes() for path in folder.rglob("*")
                   if path.is_file())
    assert mailboxes.staged(info.id) == []


def test_implicit_tls_towards_the_client(
        proxy: RunningProxy, provider: Provider, mailboxes: GatewayMailboxes) -> None:
    info, _ = mailboxes.create(None)
    context = ssl.create_default_context(cafile=str(provider.ca_file))
    with smtplib.SMTP_SSL("127.0.0.1", proxy.tls_port, context=context, timeout=30) as client:
        client.login(f"{USER}%127.0.0.1:{provider.port}%{info.id}", PASSWORD)
        client.sendmail(USER, ["bob@elsewhere.example"], _message("over smtps"))
    assert mailboxes.get(info.id).count == 1


def test_implicit_tls_towards_the_provider(provider: Provider,
                                           mailboxes: GatewayMailboxes) -> None:
    """Postfix's smtps service (wrapper mode, port 465, Dovecot SASL): no port in the user
    name means 465, and 465 means TLS from the first byte."""
    info, password = mailboxes.create(None)
    settings = _settings(provider, [provider.smtps_address])
    settings.gateway.ca_file = str(provider.smtps_ca_file)
    raw = _message("over implicit TLS to the provider")
    with running_proxy(settings, mailboxes) as running, \
            _client(running.port, provider.ca_file) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(f"{USER}%{provider.smtps_address}%{info.id}", "not-" + PASSWORD)
        client.login(f"{USER}%{provider.smtps_address}%{info.id}", PASSWORD)
        assert client.sendmail(USER, ["bob@elsewhere.example"], raw) == {}
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail(USER, ["bob@elsewhere.example"], _message(REFUSED_SUBJECT))
    opened = mailboxes.unlock(info.id, password)
    # The smtps service speaks nothing but TLS: a relayed message is proof enough.
    assert [opened.read(m.id) for m in opened.messages()] == [raw]


def test_a_refusal_reaches_the_client_unchanged_and_nothing_is_kept(
        proxy: RunningProxy, provider: Provider, mailboxes: GatewayMailboxes) -> None:
    info, _ = mailboxes.create(None)
    raw = _message(REFUSED_SUBJECT)
    with _client(provider.port, provider.ca_file) as direct:
        direct.login(USER, PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as straight:
            direct.sendmail(USER, ["bob@elsewhere.example"], raw)
    with _client(proxy.port, provider.ca_file) as client:
        client.login(f"{USER}%127.0.0.1:{provider.port}%{info.id}", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as proxied:
            client.sendmail(USER, ["bob@elsewhere.example"], raw)
        # The session goes on: the next message is relayed and kept.
        client.sendmail(USER, ["bob@elsewhere.example"], _message("after a refusal"))
    assert proxied.value.smtp_code == straight.value.smtp_code == 550
    assert proxied.value.smtp_error == straight.value.smtp_error
    assert REFUSAL_TEXT.encode() in proxied.value.smtp_error
    assert mailboxes.get(info.id).count == 1
    assert mailboxes.staged(info.id) == []


def test_the_provider_refuses_a_wrong_password(
        proxy: RunningProxy, provider: Provider, mailboxes: GatewayMailboxes) -> None:
    info, _ = mailboxes.create(None)
    with _client(proxy.port, provider.ca_file) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(f"{USER}%127.0.0.1:{provider.port}%{info.id}", "wrong")
        assert refused.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPSenderRefused) as no_login:
            client.sendmail(USER, ["bob@elsewhere.example"], _message("not logged in"))
        assert no_login.value.smtp_code == 530


def test_no_auth_before_tls_from_the_client(proxy: RunningProxy) -> None:
    with smtplib.SMTP("127.0.0.1", proxy.port, timeout=30) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        token = base64.b64encode(b"\0u%127.0.0.1%m\0secret").decode()
        assert client.docmd("AUTH", f"PLAIN {token}")[0] == 530  # STARTTLS first


@pytest.fixture
def plain() -> Iterator[PlainProvider]:
    server = PlainProvider()
    server.start()
    yield server
    server.stop()


def _refused_login(proxy_port: int, ca_file: Path, name: str) -> smtplib.SMTPResponseException:
    with _client(proxy_port, ca_file) as client, \
            pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.login(name, PASSWORD)
    return refused.value


def test_a_provider_without_tls_never_hears_a_password(
        proxy: RunningProxy, provider: Provider, mailboxes: GatewayMailboxes,
        plain: PlainProvider) -> None:
    info, _ = mailboxes.create(None)
    refused = _refused_login(proxy.port, provider.ca_file,
                             f"{USER}%127.0.0.1:{plain.port}%{info.id}")
    assert refused.smtp_code == 454
    heard = b"".join(plain.lines)
    assert heard.startswith(b"EHLO ")  # the proxy did talk to it, then left
    assert b"AUTH" not in heard.upper()
    assert PASSWORD.encode() not in heard and base64.b64encode(PASSWORD.encode()) not in heard


def test_a_server_not_in_the_allowlist_is_never_contacted(
        provider: Provider, mailboxes: GatewayMailboxes, plain: PlainProvider) -> None:
    info, _ = mailboxes.create(None)
    with running_proxy(_settings(provider, ["smtp.example.com", "127.0.0.2"]),
                       mailboxes) as proxy:
        refused = _refused_login(proxy.port, provider.ca_file,
                                 f"{USER}%127.0.0.1:{plain.port}%{info.id}")
    assert refused.smtp_code == 535
    assert plain.lines == []


def test_an_unknown_mailbox_is_refused_before_the_provider(
        proxy: RunningProxy, provider: Provider, plain: PlainProvider) -> None:
    refused = _refused_login(proxy.port, provider.ca_file,
                             f"{USER}%127.0.0.1:{plain.port}%aaaaaaaaaaaa")
    assert refused.smtp_code == 535
    assert plain.lines == []


def test_serve_runs_the_proxy(provider: Provider, vault: Vault,
                              serving: Callable[..., Running]) -> None:
    configured = _settings(provider, ["127.0.0.1"])
    vault.settings.gateway = configured.gateway
    mailboxes = GatewayMailboxes.of(vault.path, vault.settings.gateway)
    info, _ = mailboxes.create(None)
    running = serving({"smtp_proxy": ["127.0.0.1:0"]})
    with _client(running.port("smtp-proxy"), provider.ca_file) as client:
        client.login(f"{USER}%127.0.0.1:{provider.port}%{info.id}", PASSWORD)
        client.sendmail(USER, ["bob@elsewhere.example"], _message("through serve"))
    assert mailboxes.get(info.id).count == 1


def test_a_suspended_mailbox_is_refused_before_the_provider(
        proxy: RunningProxy, provider: Provider, mailboxes: GatewayMailboxes,
        plain: PlainProvider) -> None:
    info, _ = mailboxes.create(None)
    mailboxes.set_state(info.id, SUSPENDED)
    refused = _refused_login(proxy.port, provider.ca_file,
                             f"{USER}%127.0.0.1:{plain.port}%{info.id}")
    assert refused.smtp_code == 535
    assert plain.lines == []


def test_copies_left_staged_by_a_stop_are_kept_on_start(provider: Provider,
                                                        mailboxes: GatewayMailboxes) -> None:
    info, password = mailboxes.create(None)
    raw = _message("in flight when the proxy stopped")
    # The copy a stopped proxy made before the provider's answer (its writer is gone).
    stopped = GatewayMailboxes(mailboxes.folder, mailboxes.domain)
    staged = stopped.stage(info.id, raw)
    assert staged is not None
    stopped.close()
    # A copy a live writer still holds is not the stopped proxy's: it is left alone.
    live = mailboxes.stage(info.id, _message("still in flight"))
    assert live is not None
    assert mailboxes.staged(info.id) == [staged.message_id, live.message_id]
    with running_proxy(_settings(provider, []), mailboxes) as running:
        assert mailboxes.staged(info.id) == [live.message_id]
        opened = mailboxes.unlock(info.id, password)
        assert [m.id for m in opened.messages()] == [staged.message_id]
        assert opened.read(staged.message_id) == raw
        last = running.status.snapshot({})["last_error"]
        assert "kept 1 staged copies" in str(last)
    live.abandon()
    assert mailboxes.staged(info.id) == []
