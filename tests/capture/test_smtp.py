"""The SMTP endpoint driven by Python's smtplib: durable 250, envelope as provenance, TLS, AUTH,
and every refusal the endpoint owes (554, 550, 552, 421, 538/530, empty)."""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import BinaryIO

import pytest
from sqlalchemy import select

from mailvault.capture.spool import Position, Spool
from mailvault.capture.status import read_status
from mailvault.capture.users import add_user
from mailvault.cli.health import describe_status
from mailvault.records import Provenance
from mailvault.serve import spool_folder
from mailvault.store import catalog, schema
from mailvault.vault import Vault
from tests.capture.conftest import Certificate, Running, build, message_count, wait_until
from tests.support import stored_provenance

Serving = Callable[..., Running]


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def provenances(vault: Vault) -> list[dict[str, object]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(schema.provenance.c.data)).all()
    return [stored_provenance(r.data) for r in rows]


def raw_of_only_message(vault: Vault) -> bytes:
    with vault.engine.connect() as conn:
        (row,) = catalog.messages_by_id(conn, [catalog.max_message_id(conn)])
    return vault.read_raw(row)


def test_message_is_archived_byte_exact_with_its_envelope(vault: Vault, serving: Serving) -> None:
    running = serving()
    raw = build("Quarterly numbers", body="..leading dot line\r\nline two\r\n")
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo("mta.example.org")
        refused = client.sendmail("alice@example.org",
                                  ["bob@example.org", "hidden@example.org"], raw)
    assert refused == {}
    wait_until(lambda: message_count(vault) == 1, what="the message in the vault")
    assert raw_of_only_message(vault) == raw
    (prov,) = provenances(vault)
    assert prov["kind"] == "smtp"
    assert prov["envelope_from"] == "alice@example.org"
    assert prov["envelope_to"] == ["bob@example.org", "hidden@example.org"]
    assert prov["client_address"] == "127.0.0.1"
    assert prov["helo"] == "mta.example.org"
    assert prov["tls"] is None
    wait_until(lambda: vault.index.count(_bcc("hidden@example.org")) == 1, what="bcc search")


def _bcc(address: str):  # type: ignore[no-untyped-def]
    from mailvault.search.query import parse
    return parse(f"bcc:{address}")


def test_null_sender_is_accepted(vault: Vault, serving: Serving) -> None:
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.sendmail("<>", ["postmaster@example.org"], build("Undelivered Mail"))
    wait_until(lambda: message_count(vault) == 1)
    (prov,) = provenances(vault)
    assert prov["envelope_from"] == ""


def test_eight_bit_and_smtputf8_are_kept_byte_exact(vault: Vault, serving: Serving) -> None:
    running = serving()
    raw = ("From: jörg@例え.jp\r\nTo: zoë@example.org\r\nSubject: Grüße\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
           "\r\nSchöne Grüße, 日本語のテキスト\r\n" + "x" * 3000 + "\r\n").encode()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo()
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        client.sendmail("jörg@例え.jp", ["zoë@example.org"], raw,
                        mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    wait_until(lambda: message_count(vault) == 1)
    assert raw_of_only_message(vault) == raw


def test_starttls_then_auth(vault: Vault, serving: Serving, certificate: Certificate) -> None:
    vault.settings.smtp.tls_cert = str(certificate.cert)
    vault.settings.smtp.tls_key = str(certificate.key)
    vault.settings.smtp.auth = "required"
    vault.settings.smtp.require_tls = True
    add_user(vault.path, "journal", "correct horse battery")
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo()
        assert "auth" not in client.esmtp_features
        code, _ = client.docmd("AUTH", "PLAIN AGpvdXJuYWwAY29ycmVjdCBob3JzZSBiYXR0ZXJ5")
        assert code == 530  # STARTTLS first
        code, _ = client.docmd("MAIL", "FROM:<a@example.org>")
        assert code == 530  # TLS required first
        client.starttls(context=client_tls())
        client.ehlo()
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.org", ["b@example.org"], build("no auth"))
        assert refused.value.smtp_code == 530
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("journal", "wrong password")
        client.login("journal", "correct horse battery")
        client.sendmail("a@example.org", ["b@example.org"], build("over tls"))
    wait_until(lambda: message_count(vault) == 1)
    (prov,) = provenances(vault)
    assert prov["auth_user"] == "journal"
    assert str(prov["tls"]).startswith("TLSv1.")


def test_auth_is_refused_before_tls(vault: Vault, serving: Serving,
                                    certificate: Certificate) -> None:
    vault.settings.smtp.tls_cert = str(certificate.cert)
    vault.settings.smtp.tls_key = str(certificate.key)
    vault.settings.smtp.auth = "optional"
    add_user(vault.path, "journal", "correct horse battery")
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo()
        assert "auth" not in client.esmtp_features and client.has_extn("starttls")
        code, _ = client.docmd("AUTH", "PLAIN AGpvdXJuYWwAY29ycmVjdCBob3JzZSBiYXR0ZXJ5")
        assert code == 538
        client.starttls(context=client_tls())
        client.ehlo()
        assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        client.login("journal", "correct horse battery")


def test_implicit_tls_with_login(vault: Vault, serving: Serving,
                                 certificate: Certificate) -> None:
    vault.settings.smtp.tls_cert = str(certificate.cert)
    vault.settings.smtp.tls_key = str(certificate.key)
    vault.settings.smtp.tls_listen = ["127.0.0.1:0"]
    vault.settings.smtp.auth = "optional"
    add_user(vault.path, "journal", "correct horse battery")
    running = serving()
    with smtplib.SMTP_SSL("127.0.0.1", running.port("smtps"), timeout=10,
                          context=client_tls()) as client:
        client.ehlo()
        client.esmtp_features["auth"] = "LOGIN"  # exercise LOGIN, not smtplib's first pick
        client.login("journal", "correct horse battery")
        client.sendmail("a@example.org", ["b@example.org"], build("implicit tls"))
    wait_until(lambda: message_count(vault) == 1)
    (prov,) = provenances(vault)
    assert prov["auth_user"] == "journal" and str(prov["tls"]).startswith("TLSv1.")
    assert str(prov["source"]).endswith(f":{running.port('smtps')}")


def test_client_outside_the_allowlist_gets_554(vault: Vault, serving: Serving) -> None:
    vault.settings.smtp.allow = ["10.0.0.0/8", "192.168.0.0/16"]
    running = serving()
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", running.port(), timeout=10)
    assert refused.value.smtp_code == 554


def test_only_accepted_recipients(vault: Vault, serving: Serving) -> None:
    vault.settings.smtp.recipients = ["journal@archive.test", "@capture.test"]
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo()
        client.mail("a@example.org")
        assert client.rcpt("bob@example.org")[0] == 550
        assert client.rcpt("Journal@Archive.test")[0] == 250
        assert client.rcpt("any@capture.test")[0] == 250
        client.rset()
    assert message_count(vault) == 0


def test_oversize_is_refused_with_552(vault: Vault, serving: Serving) -> None:
    vault.settings.smtp.max_message_mb = 1
    running = serving()
    big = build("big", body="y" * 76 + "\r\n") * 1
    big = big + (b"z" * 998 + b"\r\n") * 1100
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo()
        assert int(client.esmtp_features["size"]) == 1024 * 1024
        with pytest.raises(smtplib.SMTPSenderRefused) as by_size:
            client.sendmail("a@example.org", ["b@example.org"], big)  # SIZE=... on MAIL
        assert by_size.value.smtp_code == 552
        client.rset()
        client.esmtp_features.pop("size")  # a client that does not announce the size
        with pytest.raises(smtplib.SMTPDataError) as by_data:
            client.sendmail("a@example.org", ["b@example.org"], big)
        assert by_data.value.smtp_code == 552
        client.sendmail("a@example.org", ["b@example.org"], build("small one"))
    wait_until(lambda: message_count(vault) == 1)


def test_empty_message_is_refused(vault: Vault, serving: Serving) -> None:
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client, \
            pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("a@example.org", ["b@example.org"], b"\r\n")
    assert refused.value.smtp_code == 554


def test_connection_limit_gives_421(vault: Vault, serving: Serving) -> None:
    vault.settings.smtp.max_connections = 2
    running = serving()
    first = smtplib.SMTP("127.0.0.1", running.port(), timeout=10)
    second = smtplib.SMTP("127.0.0.1", running.port(), timeout=10)
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", running.port(), timeout=10)
    assert refused.value.smtp_code == 421
    first.quit()
    wait_until(lambda: _greeting(running.port()).startswith(b"220"), what="a free slot")
    second.quit()


def _greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        line = sock.recv(512)
        sock.sendall(b"QUIT\r\n")
        return line


def test_disconnect_mid_data_leaves_nothing(vault: Vault, serving: Serving) -> None:
    running = serving()
    with socket.create_connection(("127.0.0.1", running.port()), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for command in (b"EHLO x\r\n", b"MAIL FROM:<a@example.org>\r\n",
                        b"RCPT TO:<b@example.org>\r\n", b"DATA\r\n"):
            sock.sendall(command)
            while True:
                line = reader.readline()
                if line[3:4] != b"-":
                    break
        assert line.startswith(b"354")
        sock.sendall(b"Subject: cut off\r\n\r\nhalf a message")
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.sendmail("a@example.org", ["b@example.org"], build("complete"))
    wait_until(lambda: message_count(vault) == 1)
    running.stop()
    assert b"cut off" not in b"".join(
        p.read_bytes() for p in spool_folder(vault).glob("*.seg"))
    status = json.loads((vault.path / "serve-status.json").read_text())
    assert status["accepted"] == {"smtp": 1}
    assert status["spool"]["depth"] == 0


def test_silent_client_times_out(vault: Vault, serving: Serving) -> None:
    vault.settings.smtp.timeout_s = 0.5
    running = serving()
    with socket.create_connection(("127.0.0.1", running.port()), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        assert reader.readline().startswith(b"421 4.4.2")  # told why ...
        assert reader.readline() == b""  # ... and closed by the server, not by us


def converse(port: int, commands: list[bytes], source: str = "127.0.0.1") -> list[bytes]:
    """Send each command as raw bytes and collect its whole reply (the greeting first)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as sock:
        reader = sock.makefile("rb")
        replies = [_whole_reply(reader)]
        for command in commands:
            sock.sendall(command + b"\r\n")
            replies.append(_whole_reply(reader))
        return replies


def _whole_reply(reader: BinaryIO) -> bytes:
    lines = []
    while (line := reader.readline())[3:4] == b"-":
        lines.append(line)
    return b"".join([*lines, line])


def test_an_envelope_that_is_not_utf8_is_archived_with_its_bytes(vault: Vault,
                                                                 serving: Serving) -> None:
    running = serving()
    replies = converse(running.port(), [
        b"EHLO h\xe9st", b"MAIL FROM:<\xff\xfe@bad>", b"RCPT TO:<j\xe9@x.org>", b"DATA",
        build("Latin-1 envelope") + b".", b"QUIT"])
    assert [r[:3] for r in replies] == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"]
    wait_until(lambda: message_count(vault) == 1, what="the message in the vault")
    (prov,) = provenances(vault)
    # Shown decoded as well as can be; the bytes as received kept beside.
    assert prov["envelope_from"] == "\\xff\\xfe@bad"
    assert prov["envelope_to"] == ["j\\xe9@x.org"]
    assert prov["helo"] == "h\\xe9st"
    extra = prov["extra"]
    assert isinstance(extra, dict)
    assert base64.b64decode(extra["envelope_from_bytes"]) == b"\xff\xfe@bad"
    assert [base64.b64decode(b) for b in json.loads(extra["envelope_to_bytes"])] == [
        b"j\xe9@x.org"]
    assert base64.b64decode(extra["helo_bytes"]) == b"h\xe9st"
    running.stop()
    status = json.loads((vault.path / "serve-status.json").read_text())
    assert status["accepted"] == {"smtp": 1} and status["internal_errors"] == 0
    assert status["last_error"] is None


def test_a_fault_of_ours_is_counted_and_shown_by_status(vault: Vault, serving: Serving,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = Spool.store

    async def failing(spool: Spool, raw: bytes, provenance: Provenance) -> Position:
        if b"Subject: fault" in raw:
            raise RuntimeError("the disk controller is on fire")
        return await store(spool, raw, provenance)

    monkeypatch.setattr(Spool, "store", failing)
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client, \
            pytest.raises(smtplib.SMTPDataError) as failed:
        client.sendmail("a@example.org", ["b@example.org"], build("fault"))
    assert failed.value.smtp_code == 421
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.sendmail("a@example.org", ["b@example.org"], build("fine"))
    running.stop()
    status = read_status(vault.path)
    assert status is not None and status["internal_errors"] == 1
    assert status["last_error"]["error"] == ("an SMTP session failed: RuntimeError: the disk "
                                             "controller is on fire")
    lines = describe_status(status)
    assert ("  internal errors: 1 (faults of the archive, answered 421 or tempfail; see the "
            "last error)") in lines
    assert any("the disk controller is on fire" in line for line in lines)
