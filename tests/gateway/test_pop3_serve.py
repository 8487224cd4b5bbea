"""`serve` runs the POP3 service and the POP3 proxy beside the SMTP endpoint: mail that arrives
for a mailbox address over SMTP is drained byte-exact over POP3 from the same process."""

from __future__ import annotations

import logging
import poplib
import smtplib
from collections.abc import Callable

import pytest

from mailvault.errors import ConfigError
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.vault import Vault
from tests.capture.conftest import Running, build
from tests.gateway.pop3_support import GatewayCertificate

Serving = Callable[..., Running]


def test_smtp_in_pop3_out(vault: Vault, serving: Serving, mailboxes: GatewayMailboxes,
                          gateway_certificate: GatewayCertificate,
                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    vault.settings.gateway.tls_cert = str(gateway_certificate.cert)
    vault.settings.gateway.tls_key = str(gateway_certificate.key)
    info, password = mailboxes.create("pull me")
    running = serving({"smtp": ["127.0.0.1:0"], "pop3": ["127.0.0.1:0"],
                       "pop3-proxy": ["127.0.0.1:0"]})
    sent = [build(f"Pulled {n}", body=f".line {n}\r\nend\r\n") for n in range(3)]
    with smtplib.SMTP("127.0.0.1", running.port("smtp"), timeout=30) as client:
        for raw in sent:
            client.sendmail("journal@tenant.example.com", [info.address], raw)

    client = poplib.POP3("127.0.0.1", running.port("pop3"), timeout=30)
    client.stls(gateway_certificate.client_context())
    client.user(info.id)
    client.pass_(password)
    got = [b"".join(line + b"\r\n" for line in client.retr(n)[1]) for n in (1, 2, 3)]
    for number in (1, 2, 3):
        client.dele(number)
    client.quit()
    assert got == sent
    assert mailboxes.get(info.id).count == 0
    proxy = poplib.POP3("127.0.0.1", running.port("pop3-proxy"), timeout=30)
    assert "STLS" in proxy.capa()
    proxy.quit()
    assert "POP3 login to mailbox" in caplog.text and password not in caplog.text


def test_the_proxy_will_not_serve_without_a_certificate(vault: Vault,
                                                        serving: Serving) -> None:
    with pytest.raises(ConfigError, match="tls_cert"):
        serving({"pop3-proxy": ["127.0.0.1:0"]})
