"""The gateway's POP3 service over real sockets, driven by Python's poplib: a mailbox drained
byte-exact (plaintext over loopback, STLS, POP3S), nothing deleted by a client that drops
before QUIT, the wrong password refused, no password taken in plaintext off loopback."""

from __future__ import annotations

import poplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from mailvault.errors import ConfigError
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.gateway.pop3_connection import server_tls
from mailvault.gateway.pop3_service import Pop3Service
from tests.gateway.pop3_support import GatewayCertificate, Running, run_service

Start = Callable[..., Running]


@pytest.fixture
def pop3_serving(gateway: GatewayMailboxes,
                 gateway_certificate: GatewayCertificate) -> Iterator[Start]:
    """Starts the POP3 service on the test's gateway: start(listen=..., tls_listen=...)."""
    started: list[Running] = []

    def start(listen: tuple[str, ...] = ("127.0.0.1:0",), tls_listen: tuple[str, ...] = (),
              tls: bool = True) -> Running:
        cert = gateway_certificate
        context = server_tls(str(cert.cert), str(cert.key), "gateway") if tls else None
        running = run_service(Pop3Service(gateway, list(listen), list(tls_listen), context))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _filled(gateway: GatewayMailboxes, messages: list[bytes]) -> tuple[str, str]:
    info, password = gateway.create("pop3 test")
    for raw in messages:
        gateway.deliver(info.id, raw)
    return info.id, password


def _retrieve(client: poplib.POP3, number: int) -> bytes:
    _status, lines, _octets = client.retr(number)
    return b"".join(line + b"\r\n" for line in lines)


def _drain(client: poplib.POP3, mailbox_id: str, password: str) -> list[bytes]:
    client.user(mailbox_id)
    client.pass_(password)
    count, _size = client.stat()
    got = [_retrieve(client, n) for n in range(1, count + 1)]
    for number in range(1, count + 1):
        client.dele(number)
    client.quit()
    return got


def test_poplib_drains_a_mailbox_byte_exact(gateway: GatewayMailboxes, pop3_serving: Start,
                                            pop3_messages: list[bytes]) -> None:
    mailbox_id, password = _filled(gateway, pop3_messages)
    host, port = pop3_serving().address
    client = poplib.POP3(host, port, timeout=30)
    client.user(mailbox_id)
    client.pass_(password)
    uidls = client.uidl()[1]
    client.quit()

    assert _drain(poplib.POP3(host, port, timeout=30), mailbox_id, password) == pop3_messages
    assert gateway.unlock(mailbox_id, password).messages() == []
    assert len(uidls) == len(pop3_messages)


def test_uidl_is_stable_across_sessions(gateway: GatewayMailboxes, pop3_serving: Start,
                                        pop3_messages: list[bytes]) -> None:
    mailbox_id, password = _filled(gateway, pop3_messages[:5])
    host, port = pop3_serving().address
    listings = []
    for _ in range(2):
        client = poplib.POP3(host, port, timeout=30)
        client.user(mailbox_id)
        client.pass_(password)
        listings.append(client.uidl()[1])
        client.quit()
    assert listings[0] == listings[1] and len(set(listings[0])) == 5


def test_stls_and_pop3s(gateway: GatewayMailboxes, pop3_serving: Start,
                        gateway_certificate: GatewayCertificate,
                        pop3_messages: list[bytes]) -> None:
    running = pop3_serving(listen=("127.0.0.1:0",), tls_listen=("127.0.0.1:0",))
    (plain_host, plain_port), (tls_host, tls_port) = (
        _address(endpoint) for endpoint in running.endpoints)
    assert running.endpoints[1].startswith("pop3s ")
    mailbox_id, password = _filled(gateway, pop3_messages[:3])
    client = poplib.POP3(plain_host, plain_port, timeout=30)
    client.stls(gateway_certificate.client_context())
    client.user(mailbox_id)
    client.pass_(password)
    assert _retrieve(client, 2) == pop3_messages[1]
    client.quit()
    secure = poplib.POP3_SSL(tls_host, tls_port, timeout=30,
                             context=gateway_certificate.client_context())
    assert b"STLS" not in b"".join(secure._longcmd("CAPA")[1])
    assert _drain(secure, mailbox_id, password) == pop3_messages[:3]


def test_a_drop_before_quit_deletes_nothing(gateway: GatewayMailboxes, pop3_serving: Start,
                                            pop3_messages: list[bytes]) -> None:
    mailbox_id, password = _filled(gateway, pop3_messages[:4])
    host, port = pop3_serving().address
    client = poplib.POP3(host, port, timeout=30)
    client.user(mailbox_id)
    client.pass_(password)
    for number in range(1, 5):
        _retrieve(client, number)
        client.dele(number)
    client.close()  # no QUIT

    # Once the service has seen the drop, the mailbox is free again and still full.
    again = _log_in_when_free(host, port, mailbox_id, password)
    assert again.stat()[0] == 4
    again.quit()
    assert len(gateway.unlock(mailbox_id, password).messages()) == 4


def test_wrong_password_is_refused(gateway: GatewayMailboxes, pop3_serving: Start,
                                   pop3_messages: list[bytes]) -> None:
    mailbox_id, password = _filled(gateway, pop3_messages[:1])
    host, port = pop3_serving().address
    client = poplib.POP3(host, port, timeout=30)
    client.user(mailbox_id)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_(password + "x")
    client.user("nosuchmailbox")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.pass_(password)
    client.user(mailbox_id)
    client.pass_(password)
    assert client.stat()[0] == 1
    client.quit()


def test_no_plaintext_password_off_loopback(gateway: GatewayMailboxes, pop3_serving: Start,
                                            gateway_certificate: GatewayCertificate,
                                            pop3_messages: list[bytes]) -> None:
    with pytest.raises(ConfigError, match="tls_cert"):
        Pop3Service(gateway, ["0.0.0.0:0"], [], None)
    address = _outside_address()
    mailbox_id, password = _filled(gateway, pop3_messages[:1])
    _host, port = pop3_serving(listen=(f"{address}:0",)).address
    client = poplib.POP3(address, port, timeout=30)
    with pytest.raises(poplib.error_proto, match="Start TLS first"):
        client.user(mailbox_id)
    with pytest.raises(poplib.error_proto, match="Start TLS first"):
        client.pass_(password)
    context = ssl.create_default_context(cafile=str(gateway_certificate.ca))
    context.check_hostname = False  # the certificate names 127.0.0.1, not this address
    client.stls(context)
    client.user(mailbox_id)
    client.pass_(password)
    assert client.stat()[0] == 1
    client.quit()


def _log_in_when_free(host: str, port: int, mailbox_id: str, password: str) -> poplib.POP3:
    """A logged-in client, once the service has noticed that the last session dropped (it
    answers [IN-USE] until then)."""
    for _ in range(200):
        client = poplib.POP3(host, port, timeout=30)
        client.user(mailbox_id)
        try:
            client.pass_(password)
            return client
        except poplib.error_proto as exc:
            assert b"IN-USE" in exc.args[0], exc
            client.quit()
            time.sleep(0.05)
    pytest.fail("the dropped session kept the mailbox")


def _address(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.partition(" ")[2].rpartition(":")
    return host, int(port)


def _outside_address() -> str:
    """This machine's address on its first non-loopback interface (skip without one)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address = str(probe.getsockname()[0])
    except OSError:
        pytest.skip("no non-loopback interface")
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip("no non-loopback interface")
    return address
