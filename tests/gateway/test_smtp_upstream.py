"""The proxy's upstream SMTP side as scripted conversations, without sockets."""

from __future__ import annotations

import base64

import pytest

from mailvault.errors import GatewayError
from mailvault.gateway.smtp_upstream import (
    Login,
    LoginRefused,
    Reply,
    ReplyReader,
    Step,
    data_payload,
    mail_command,
)

EHLO_CLEAR = b"250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
EHLO_TLS = b"250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"


def _reply(data: bytes) -> Reply:
    (reply,) = ReplyReader().feed(data)
    return reply


def test_replies_split_anywhere_come_out_whole() -> None:
    reader = ReplyReader()
    wire = b"220 hi\r\n" + EHLO_TLS
    replies = [r for i in range(len(wire)) for r in reader.feed(wire[i:i + 1])]
    assert [r.code for r in replies] == [220, 250]
    assert replies[1].lines == ("mx.test", "AUTH PLAIN LOGIN", "SIZE 1000", "8BITMIME")
    assert replies[1].text() == EHLO_TLS.decode().rstrip("\r\n")
    assert not reader.pending


@pytest.mark.parametrize("wire", [b"hello\r\n", b"250-a\r\n550 b\r\n", b"2" * 5000])
def test_malformed_replies_are_refused(wire: bytes) -> None:
    with pytest.raises(GatewayError):
        ReplyReader().feed(wire)


def test_starttls_login_sends_auth_only_after_tls() -> None:
    login = Login("proxy.test", "alice", b"pw", implicit_tls=False)
    assert login.receive(_reply(b"220 mx.test ESMTP\r\n")) is Step.SEND
    assert login.outgoing == b"EHLO proxy.test\r\n"
    assert login.receive(_reply(EHLO_CLEAR)) is Step.SEND
    assert login.outgoing == b"STARTTLS\r\n"
    assert login.receive(_reply(b"220 go ahead\r\n")) is Step.START_TLS
    assert login.tls_started() is Step.SEND
    assert login.outgoing == b"EHLO proxy.test\r\n"
    assert login.receive(_reply(EHLO_TLS)) is Step.SEND
    assert login.outgoing == b"AUTH PLAIN " + base64.b64encode(b"\0alice\0pw") + b"\r\n"
    assert login.receive(_reply(b"235 2.7.0 ok\r\n")) is Step.READY
    assert login.extensions["SIZE"] == "1000"


@pytest.mark.parametrize("ehlo", [b"250-mx.test\r\n250 AUTH PLAIN\r\n", b"250 mx.test\r\n"])
def test_no_starttls_means_no_credential(ehlo: bytes) -> None:
    login = Login("proxy.test", "alice", b"pw", implicit_tls=False)
    login.receive(_reply(b"220 mx.test\r\n"))
    with pytest.raises(GatewayError, match="no password was sent"):
        login.receive(_reply(ehlo))
    assert b"AUTH" not in login.outgoing


def test_refused_starttls_means_no_credential() -> None:
    login = Login("proxy.test", "alice", b"pw", implicit_tls=False)
    login.receive(_reply(b"220 mx.test\r\n"))
    login.receive(_reply(EHLO_CLEAR))
    with pytest.raises(GatewayError, match="refused STARTTLS"):
        login.receive(_reply(b"454 4.7.0 TLS not available\r\n"))


def test_implicit_tls_login_with_auth_login_and_a_refusal() -> None:
    login = Login("proxy.test", "alice", b"pw", implicit_tls=True)
    login.receive(_reply(b"220 mx.test\r\n"))
    assert login.receive(_reply(b"250-mx.test\r\n250 AUTH LOGIN\r\n")) is Step.SEND
    assert login.outgoing == b"AUTH LOGIN\r\n"
    login.receive(_reply(b"334 VXNlcm5hbWU6\r\n"))
    assert login.outgoing == base64.b64encode(b"alice") + b"\r\n"
    login.receive(_reply(b"334 UGFzc3dvcmQ6\r\n"))
    assert login.outgoing == base64.b64encode(b"pw") + b"\r\n"
    with pytest.raises(LoginRefused) as refused:
        login.receive(_reply(b"535 5.7.8 no\r\n"))
    assert refused.value.reply.text() == "535 5.7.8 no"
    assert "pw" not in str(refused.value)


def test_mail_parameters_follow_the_provider_and_data_is_stuffed() -> None:
    offered = {"SIZE": "1000", "8BITMIME": ""}
    assert (mail_command("a@b", [("SIZE", "10"), ("BODY", "8BITMIME"), ("SMTPUTF8", "")],
                         offered) == b"MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME\r\n")
    assert data_payload(b".a\r\n.\r\nb") == b"..a\r\n..\r\nb\r\n.\r\n"
