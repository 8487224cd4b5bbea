"""Exchange envelope journal reports and envelope headers: what the archive records."""

from __future__ import annotations

import smtplib
from collections.abc import Callable

from sqlalchemy import select

from mailvault.capture.arrival import to_incoming
from mailvault.capture.journal_report import unwrap
from mailvault.records import Provenance
from mailvault.search.query import parse
from mailvault.store import catalog, schema
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, message_count, wait_until
from tests.support import stored_provenance

ORIGINAL = (b"From: Michelle <michelle@contoso.com>\r\nTo: chris@contoso.com\r\n"
            b"Cc: sales@contoso.com\r\nSubject: Quarterly report\r\n"
            b"Message-ID: <q4-report@contoso.com>\r\nDate: Tue, 02 Feb 2021 09:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"Numbers attached in spirit.\r\n\r\n-- \r\nMichelle\r\n")


def journal_report(original: bytes = ORIGINAL) -> bytes:
    """An envelope journal report as Exchange 2010+ / Microsoft 365 send it."""
    return (b"From: Microsoft Exchange <journal@contoso.com>\r\n"
            b"To: archive@archive.test\r\nSubject: Quarterly report\r\n"
            b"X-MS-Journal-Report: \r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="_journal_boundary_"\r\n\r\n'
            b"--_journal_boundary_\r\nContent-Type: text/plain; charset=us-ascii\r\n"
            b"Content-Transfer-Encoding: 7bit\r\n\r\n"
            b"Sender: michelle@contoso.com\r\nSubject: Quarterly report\r\n"
            b"Message-Id: <q4-report@contoso.com>\r\nTo: chris@contoso.com\r\n"
            b"Cc: sales@contoso.com, Expanded: ann@contoso.com\r\n"
            b"Cc: sales@contoso.com, Expanded: raj@contoso.com\r\n"
            b"Bcc: legal@contoso.com\r\n\r\n"
            b"--_journal_boundary_\r\nContent-Type: message/rfc822\r\n"
            b'Content-Disposition: attachment; filename="Quarterly report.eml"\r\n\r\n'
            + original +
            b"\r\n--_journal_boundary_--\r\n")


def test_report_is_unwrapped_byte_exact() -> None:
    report = unwrap(journal_report())
    assert report is not None
    assert report.original == ORIGINAL
    assert report.sender == "michelle@contoso.com"
    assert report.recipients == ("chris@contoso.com", "sales@contoso.com", "ann@contoso.com",
                                 "raj@contoso.com", "legal@contoso.com")
    assert report.message_id == "<q4-report@contoso.com>"


def test_a_message_without_the_header_is_not_a_report() -> None:
    assert unwrap(journal_report().replace(b"X-MS-Journal-Report: \r\n", b"")) is None
    assert unwrap(build("plain")) is None


def test_envelope_headers_are_recorded() -> None:
    raw = build("delivered", extra_headers="Delivered-To: carol@example.org\r\n"
                "X-Envelope-To: <dave@example.org>, erin@example.org\r\n")
    incoming = to_incoming(raw, Provenance(kind="smtp", source="s",
                                           envelope_to=("archive@archive.test",)))
    assert incoming.raw == raw
    assert incoming.provenance.envelope_to == ("archive@archive.test", "carol@example.org",
                                               "dave@example.org", "erin@example.org")
    extra = dict(incoming.provenance.extra)
    assert extra["delivered-to"] == "carol@example.org"
    assert extra["x-envelope-to"] == "dave@example.org, erin@example.org"


def test_journal_report_over_smtp(vault: Vault, serving: Callable[..., Running]) -> None:
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.sendmail("journal@contoso.com", ["archive@archive.test"], journal_report())
    wait_until(lambda: message_count(vault) == 1)
    with vault.engine.connect() as conn:
        (row,) = catalog.messages_by_id(conn, [catalog.max_message_id(conn)])
        (data,) = conn.execute(select(schema.provenance.c.data)).scalars().all()
    assert vault.read_raw(row) == ORIGINAL
    prov = stored_provenance(data)
    assert prov["envelope_from"] == "michelle@contoso.com"
    assert "legal@contoso.com" in prov["envelope_to"]
    assert prov["extra"]["journal"] == "exchange"
    assert prov["extra"]["journal_envelope_to"] == "archive@archive.test"
    wait_until(lambda: vault.index.count(parse("bcc:legal@contoso.com")) == 1)
    assert vault.index.count(parse("participant:raj@contoso.com")) == 1
