"""The POP3 proxy state machine without sockets: a scripted provider answers what the
machine writes upstream, and the test plays the client."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailvault.gateway.pop3_login import Close, Send, StartTls
from mailvault.gateway.pop3_proxy import (
    CloseUpstream,
    OpenUpstream,
    Phase,
    Pop3Proxy,
    ProxyAction,
    ProxyOptions,
    Side,
    StartUpstreamTls,
    Store,
    ToUpstream,
)
from mailvault.gateway.pop3_wire import stuffed

MESSAGE = b"Subject: hi\r\n\r\n.dot line\r\nbody\r\n"


@dataclass
class ScriptedProvider:
    """A provider that answers each command line from a table, and records what it got."""

    implicit_tls: bool = True
    offers_stls: bool = True
    password: str = "pw"
    received: list[bytes] = field(default_factory=list)
    stored: dict[str, bytes] = field(default_factory=dict)
    to_client: bytes = b""
    closed: bool = False
    upstream_open: bool = False

    def answer(self, line: bytes) -> bytes:
        self.received.append(line)
        command = line.split(b" ")[0].upper()
        if command == b"CAPA":
            return b"+OK\r\nTOP\r\nUIDL\r\n" + (b"STLS\r\n" if self.offers_stls else b"") + \
                b".\r\n"
        if command == b"STLS":
            return b"+OK go\r\n"
        if command == b"USER":
            return b"+OK\r\n"
        if command == b"PASS":
            if line == b"PASS " + self.password.encode():
                return b"+OK Logged in.\r\n"
            return b"-ERR [AUTH] Authentication failed.\r\n"
        if command == b"UIDL":
            return b"+OK\r\n1 u-one\r\n.\r\n"
        if line == b"RETR 1":
            return b"+OK %d octets\r\n" % len(MESSAGE) + stuffed(MESSAGE)
        if line == b"RETR 2":
            return b"-ERR There's no message 2.\r\n"
        if command == b"QUIT":
            return b"+OK Logging out.\r\n"
        return b"+OK\r\n"

    def run(self, proxy: Pop3Proxy, actions: list[ProxyAction]) -> None:
        while actions:
            action, actions = actions[0], actions[1:]
            if isinstance(action, Send):
                self.to_client += action.data
            elif isinstance(action, Close):
                self.closed = True
            elif isinstance(action, StartTls):
                actions += proxy.client_tls_started()
            elif isinstance(action, OpenUpstream):
                self.upstream_open = True
                actions += proxy.upstream_connected(self.implicit_tls)
                actions += proxy.upstream_data(b"+OK Dovecot ready.\r\n")
            elif isinstance(action, StartUpstreamTls):
                actions += proxy.upstream_tls_started()
            elif isinstance(action, ToUpstream):
                for line in action.data.split(b"\r\n")[:-1]:
                    actions += proxy.upstream_data(self.answer(line))
            elif isinstance(action, CloseUpstream):
                self.upstream_open = False
            elif isinstance(action, Store):
                self.stored.setdefault(action.key, action.raw)
                actions += proxy.stored()

    def say(self, proxy: Pop3Proxy, data: bytes) -> bytes:
        self.to_client = b""
        self.run(proxy, proxy.client_data(data))
        return self.to_client


def _proxy(provider: ScriptedProvider) -> Pop3Proxy:
    proxy = Pop3Proxy(ProxyOptions(tls_active=True, tls_available=False,
                                   max_message_bytes=1 << 20))
    provider.run(proxy, proxy.start())
    return proxy


def test_retr_is_stored_once_under_the_uidl_and_passed_back_as_received() -> None:
    provider = ScriptedProvider()
    proxy = _proxy(provider)
    assert provider.say(proxy, b"USER alice%127.0.0.1%box\r\nPASS pw\r\n") == (
        b"+OK Send PASS\r\n+OK Logged in.\r\n")
    reply = provider.say(proxy, b"RETR 1\r\n")
    assert reply == b"+OK %d octets\r\n" % len(MESSAGE) + stuffed(MESSAGE)
    provider.say(proxy, b"RETR 1\r\n")
    assert provider.stored == {"pop3:alice@127.0.0.1:995:u-one": MESSAGE}
    assert provider.say(proxy, b"RETR 2\r\n") == b"-ERR There's no message 2.\r\n"
    assert provider.say(proxy, b"DELE 1\r\nQUIT\r\n") == b"+OK\r\n+OK Logging out.\r\n"
    assert provider.received[-2:] == [b"DELE 1", b"QUIT"]
    assert provider.closed and not provider.upstream_open


def test_plaintext_provider_must_offer_stls_before_any_credential() -> None:
    provider = ScriptedProvider(implicit_tls=False, offers_stls=False)
    proxy = _proxy(provider)
    reply = provider.say(proxy, b"USER alice%127.0.0.1%box\r\nPASS pw\r\n")
    assert reply.endswith(b"the password was not sent\r\n")
    assert [line.split(b" ")[0] for line in provider.received] == [b"CAPA", b"QUIT"]
    assert proxy.phase is Phase.AUTHORIZATION and not provider.upstream_open


def test_stls_towards_the_provider_then_login() -> None:
    provider = ScriptedProvider(implicit_tls=False)
    proxy = _proxy(provider)
    assert provider.say(proxy, b"USER alice%127.0.0.1%box\r\nPASS pw\r\n").endswith(
        b"+OK Logged in.\r\n")
    assert [line.split(b" ")[0] for line in provider.received] == [
        b"CAPA", b"STLS", b"USER", b"PASS", b"UIDL"]


def test_the_providers_err_reaches_the_client_unchanged() -> None:
    provider = ScriptedProvider()
    proxy = _proxy(provider)
    reply = provider.say(proxy, b"USER alice%127.0.0.1%box\r\nPASS wrong\r\n")
    assert reply.endswith(b"\r\n-ERR [AUTH] Authentication failed.\r\n")
    assert proxy.phase is Phase.AUTHORIZATION and proxy.reading is Side.CLIENT


def test_no_password_before_client_tls() -> None:
    provider = ScriptedProvider()
    proxy = Pop3Proxy(ProxyOptions(tls_active=False, tls_available=True,
                                   max_message_bytes=1 << 20))
    provider.run(proxy, proxy.start())
    assert provider.say(proxy, b"USER a%b%c\r\n").startswith(b"-ERR [AUTH]")
    assert provider.say(proxy, b"STLS\r\n") == b"+OK Begin TLS negotiation\r\n"
    assert provider.say(proxy, b"USER a%127.0.0.1%c\r\nPASS pw\r\n").endswith(
        b"+OK Logged in.\r\n")


def test_bad_user_form_is_refused_without_connecting() -> None:
    provider = ScriptedProvider()
    proxy = _proxy(provider)
    assert provider.say(proxy, b"USER alice\r\nPASS pw\r\n").endswith(
        b"-ERR [AUTH] Log in as remote_username%target_server%mailbox_id\r\n")
    assert provider.received == []


def test_split_replies_are_reassembled() -> None:
    provider = ScriptedProvider()
    proxy = _proxy(provider)
    provider.say(proxy, b"USER alice%127.0.0.1%box\r\nPASS pw\r\n")
    actions = proxy.client_data(b"RETR 1\r\n")
    assert actions == [ToUpstream(b"RETR 1\r\n")]
    reply = b"+OK %d octets\r\n" % len(MESSAGE) + stuffed(MESSAGE)
    collected: list[ProxyAction] = []
    for byte in range(len(reply)):
        collected += proxy.upstream_data(reply[byte:byte + 1])
    assert isinstance(collected[0], Store) and collected[0].raw == MESSAGE
    assert proxy.stored() == [Send(reply)]
