"""The POP3 proxy end to end: poplib as the client (STLS or POP3S towards the proxy), Debian's
Dovecot as the provider (POP3S, and plaintext with STLS), and a fake provider without TLS that
must never see a password."""

from __future__ import annotations

import logging
import poplib
import ssl
from collections.abc import Callable, Iterator

import pytest

from mailvault.gateway.mailboxes import SUSPENDED, GatewayMailboxes
from mailvault.gateway.pop3_connection import server_tls
from mailvault.gateway.pop3_proxy_service import Pop3ProxyService, ProxySettings
from mailvault.gateway.upstream import UpstreamPolicy
from tests.gateway.fake_provider import FakeProvider
from tests.gateway.pop3_support import GatewayCertificate, Running, run_service
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import Mailbox, new_mailbox

Start = Callable[..., Running]


@pytest.fixture
def proxy(gateway: GatewayMailboxes, gateway_certificate: GatewayCertificate,
          dovecot_server: Dovecot) -> Iterator[Start]:
    """Starts the proxy: proxy(allow=("127.0.0.1",), implicit=False)."""
    started: list[Running] = []

    def start(allow: tuple[str, ...] = ("127.0.0.1",), implicit: bool = False) -> Running:
        context = server_tls(str(gateway_certificate.cert), str(gateway_certificate.key), "gateway")
        assert context is not None
        settings = ProxySettings(gateway, context,
                                 UpstreamPolicy(allow, str(dovecot_server.ca_file)), 1 << 24)
        listen = [] if implicit else ["127.0.0.1:0"]
        running = run_service(Pop3ProxyService(settings, listen,
                                               ["127.0.0.1:0"] if implicit else []))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _client(running: Running, gateway_certificate: GatewayCertificate) -> poplib.POP3:
    host, port = running.address
    if running.endpoints[0].startswith("pop3-proxys "):
        return poplib.POP3_SSL(host, port, timeout=30, context=gateway_certificate.client_context())
    client = poplib.POP3(host, port, timeout=30)
    client.stls(gateway_certificate.client_context())
    return client


def _retrieve(client: poplib.POP3, number: int) -> bytes:
    return b"".join(line + b"\r\n" for line in client.retr(number)[1])


def _direct(server: Dovecot) -> poplib.POP3:
    """A client straight to Dovecot over POP3S."""
    return poplib.POP3_SSL("127.0.0.1", server.pop3s, timeout=30,
                           context=ssl.create_default_context(cafile=str(server.ca_file)))


def _stored(gateway: GatewayMailboxes, mailbox_id: str, password: str) -> list[bytes]:
    opened = gateway.unlock(mailbox_id, password)
    return [opened.read(m.id) for m in opened.messages()]


@pytest.mark.parametrize("port_of", [lambda d: d.pop3s, lambda d: d.pop3],
                         ids=["provider-pop3s", "provider-stls"])
def test_retrieved_mail_is_kept_once_per_uidl(
        proxy: Start, gateway_certificate: GatewayCertificate, gateway: GatewayMailboxes,
        dovecot_server: Dovecot, pop3_messages: list[bytes],
        port_of: Callable[[Dovecot], int], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    owner: Mailbox = new_mailbox(dovecot_server)
    owner.fill({"INBOX": pop3_messages[:6]})
    info, password = gateway.create("proxy test")
    running = proxy()
    user = f"{owner.address}%127.0.0.1:{port_of(dovecot_server)}%{info.id}"

    for _ in range(2):
        client = _client(running, gateway_certificate)
        client.user(user)
        client.pass_(owner.password)
        assert [_retrieve(client, n) for n in (1, 2, 3)] == pop3_messages[:3]
        client.quit()

    assert sorted(_stored(gateway, info.id, password)) == sorted(pop3_messages[:3])
    client = _client(running, gateway_certificate)
    client.user(user)
    client.pass_(owner.password)
    assert _retrieve(client, 5) == pop3_messages[4]
    client.dele(1)
    client.quit()
    assert len(_stored(gateway, info.id, password)) == 4
    direct = _direct(dovecot_server)
    direct.user(owner.address)
    direct.pass_(owner.password)
    assert direct.stat()[0] == 5  # DELE and QUIT went through
    direct.quit()
    assert "POP3 proxy" in caplog.text and owner.password not in caplog.text


def test_pop3s_towards_the_client(proxy: Start, gateway_certificate: GatewayCertificate,
                                  gateway: GatewayMailboxes, dovecot_server: Dovecot,
                                  pop3_messages: list[bytes]) -> None:
    owner = new_mailbox(dovecot_server)
    owner.fill({"INBOX": pop3_messages[10:12]})
    info, password = gateway.create(None)
    client = _client(proxy(implicit=True), gateway_certificate)
    client.user(f"{owner.address}%127.0.0.1:{dovecot_server.pop3s}%{info.id}")
    client.pass_(owner.password)
    assert client.uidl()[1] and _retrieve(client, 2) == pop3_messages[11]
    client.quit()
    assert _stored(gateway, info.id, password) == [pop3_messages[11]]


def test_the_providers_err_reaches_the_client_unchanged(
        proxy: Start, gateway_certificate: GatewayCertificate, gateway: GatewayMailboxes,
        dovecot_server: Dovecot, pop3_messages: list[bytes]) -> None:
    owner = new_mailbox(dovecot_server)
    owner.fill({"INBOX": pop3_messages[20:21]})
    info, _password = gateway.create(None)
    direct = _direct(dovecot_server)
    direct.user(owner.address)
    with pytest.raises(poplib.error_proto) as wrong_direct:
        direct.pass_("wrong")
    direct.user(owner.address)
    direct.pass_(owner.password)
    with pytest.raises(poplib.error_proto) as missing_direct:
        direct.retr(7)
    direct.quit()

    client = _client(proxy(), gateway_certificate)
    client.user(f"{owner.address}%127.0.0.1:{dovecot_server.pop3s}%{info.id}")
    with pytest.raises(poplib.error_proto) as wrong:
        client.pass_("wrong")
    client.user(f"{owner.address}%127.0.0.1:{dovecot_server.pop3s}%{info.id}")
    client.pass_(owner.password)
    with pytest.raises(poplib.error_proto) as missing:
        client.retr(7)
    client.quit()
    assert wrong.value.args == wrong_direct.value.args
    assert missing.value.args == missing_direct.value.args


@pytest.mark.parametrize("offers_stls", [False, True], ids=["no-stls", "stls-that-fails"])
def test_a_provider_without_tls_never_sees_a_password(
        proxy: Start, gateway_certificate: GatewayCertificate, gateway: GatewayMailboxes,
        offers_stls: bool) -> None:
    provider = FakeProvider(offers_stls=offers_stls)
    info, _password = gateway.create(None)
    try:
        client = _client(proxy(), gateway_certificate)
        client.user(f"someone%127.0.0.1:{provider.port}%{info.id}")
        with pytest.raises(poplib.error_proto) as refused:
            client.pass_("provider-secret")
        client.quit()
    finally:
        provider.close()
    assert provider.received, "the proxy never reached the fake provider"
    assert not provider.saw_password
    assert not any(b"provider-secret" in line for line in provider.received)
    expected = b"-ERR [SYS/TEMP]" if offers_stls else b"-ERR [SYS/PERM] The provider offers no"
    assert refused.value.args[0].startswith(expected)


def test_a_server_off_the_allowlist_is_not_contacted(
        proxy: Start, gateway_certificate: GatewayCertificate, gateway: GatewayMailboxes) -> None:
    provider = FakeProvider()
    info, _password = gateway.create(None)
    try:
        client = _client(proxy(allow=("pop.example.com",)), gateway_certificate)
        client.user(f"someone%127.0.0.1:{provider.port}%{info.id}")
        with pytest.raises(poplib.error_proto, match="not on this gateway's list"):
            client.pass_("provider-secret")
        client.quit()
    finally:
        provider.close()
    assert provider.received == []


def test_an_untrusted_provider_certificate_is_refused(
        gateway: GatewayMailboxes, gateway_certificate: GatewayCertificate, dovecot_server: Dovecot,
        pop3_messages: list[bytes]) -> None:
    context = server_tls(str(gateway_certificate.cert), str(gateway_certificate.key), "gateway")
    assert context is not None
    # No ca_file: Dovecot's test CA is not trusted.
    settings = ProxySettings(gateway, context, UpstreamPolicy(("127.0.0.1",)), 1 << 24)
    running = run_service(Pop3ProxyService(settings, ["127.0.0.1:0"], []))
    try:
        owner = new_mailbox(dovecot_server)
        info, _password = gateway.create(None)
        for port in (dovecot_server.pop3s, dovecot_server.pop3):
            client = _client(running, gateway_certificate)
            client.user(f"{owner.address}%127.0.0.1:{port}%{info.id}")
            with pytest.raises(poplib.error_proto, match="certificate cannot be verified"):
                client.pass_(owner.password)
            client.quit()
    finally:
        running.stop()


def test_an_unknown_or_suspended_mailbox_costs_no_provider_login(
        proxy: Start, gateway_certificate: GatewayCertificate, gateway: GatewayMailboxes) -> None:
    provider = FakeProvider()
    suspended, _password = gateway.create(None)
    gateway.set_state(suspended.id, SUSPENDED)
    try:
        running = proxy()
        for mailbox_id in ("aaaaaaaaaaaa", suspended.id):
            client = _client(running, gateway_certificate)
            client.user(f"someone%127.0.0.1:{provider.port}%{mailbox_id}")
            with pytest.raises(poplib.error_proto, match="No such gateway mailbox"):
                client.pass_("provider-secret")
            client.quit()
    finally:
        provider.close()
    assert provider.received == []
