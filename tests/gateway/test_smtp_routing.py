"""The SMTP endpoint routes mailbox addresses into gateway mailboxes (sealed, durable before
the 250), journal addresses into the vault, and refuses suspended or unknown mailboxes."""

from __future__ import annotations

import json
import smtplib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mailvault.gateway import segments
from mailvault.gateway.mailboxes import SUSPENDED, GatewayMailboxes
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, message_count, wait_until

Serving = Callable[..., Running]
FAULTS = Path(__file__).parent / "writer_faults"


def _send(port: int, to: list[str], raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("journal@tenant.example.com", to, raw)


def test_mail_to_a_mailbox_lands_sealed(vault: Vault, serving: Serving,
                                        mailboxes: GatewayMailboxes) -> None:
    info, password = mailboxes.create("m365")
    running = serving()
    raw = build("Marmalade forecast", body="The walrus budget is approved.\r\n")
    _send(running.port(), [info.address], raw)
    on_disk = b"".join(p.read_bytes() for p in mailboxes.folder.rglob("*") if p.is_file())
    for word in (b"Marmalade", b"walrus", b"budget"):
        assert word not in on_disk
    opened = mailboxes.unlock(info.id, password)
    assert [opened.read(m.id) for m in opened.messages()] == [raw]
    assert message_count(vault) == 0


def test_a_message_for_both_goes_to_both(vault: Vault, serving: Serving,
                                         mailboxes: GatewayMailboxes) -> None:
    vault.settings.smtp.recipients = ["journal@archive.test"]
    info, password = mailboxes.create(None)
    running = serving()
    raw = build("To both")
    _send(running.port(), ["journal@archive.test", info.address.upper()], raw)
    assert mailboxes.get(info.id).count == 1
    wait_until(lambda: message_count(vault) == 1, what="the journal copy in the vault")
    opened = mailboxes.unlock(info.id, password)
    assert opened.read(opened.messages()[0].id) == raw


def test_suspended_and_unknown_mailboxes_get_550(vault: Vault, serving: Serving,
                                                 mailboxes: GatewayMailboxes) -> None:
    info, _ = mailboxes.create(None)
    mailboxes.set_state(info.id, SUSPENDED)
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo()
        client.mail("a@example.org")
        assert client.rcpt(info.address)[0] == 550
        assert client.rcpt("aaaaaaaaaaaa@gw.example.org")[0] == 550
        assert client.rcpt("not-an-id@gw.example.org")[0] == 550
        client.rset()
    mailboxes.set_state(info.id, "active")
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.ehlo()
        client.mail("a@example.org")
        assert client.rcpt(info.address)[0] == 250


def writer_fault(monkeypatch: pytest.MonkeyPatch, **fault: str) -> None:
    """The fault (``writer_faults/sitecustomize.py``) for the writer process that the next
    `serve` starts."""
    monkeypatch.setenv("PYTHONPATH", str(FAULTS))
    monkeypatch.setenv("MAILVAULT_TEST_WRITER_FAULT", json.dumps(fault))


def test_250_only_after_the_mailbox_is_fsynced(vault: Vault, serving: Serving,
                                               mailboxes: GatewayMailboxes,
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    info, _ = mailboxes.create(None)
    entered, release = tmp_path / "entered", tmp_path / "release"
    writer_fault(monkeypatch, kind="hold", call="fsync",
                 folder=str(mailboxes.folder / info.id / segments.SEGMENTS),
                 entered=str(entered), release=str(release))
    running = serving()
    outcome: list[object] = []

    def client() -> None:
        try:
            _send(running.port(), [info.address], build("Held"))
            outcome.append("250")
        except smtplib.SMTPException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    wait_until(entered.exists, what="the writer's fsync of the mailbox segment")
    # The fsync that makes the message durable is under way: no reply may have come yet.
    thread.join(0.5)
    assert thread.is_alive() and outcome == []
    release.touch()
    thread.join(30)
    assert outcome == ["250"]
    assert mailboxes.get(info.id).count == 1


@pytest.mark.parametrize("fails", ["write", "fsync"])
def test_a_retry_after_a_failed_mailbox_write_keeps_one_copy(
        vault: Vault, serving: Serving, mailboxes: GatewayMailboxes,
        monkeypatch: pytest.MonkeyPatch, fails: str) -> None:
    """The journal copy is spooled and the first mailbox's copy made visible before the second
    mailbox's copy fails (its write, or the fsync after it): the client hears 4xx and sends the
    message again, and each mailbox, like the vault, ends with one copy."""
    vault.settings.smtp.recipients = ["journal@archive.test"]
    first, first_password = mailboxes.create(None)
    second, second_password = mailboxes.create(None)
    raw = build("Sent twice", body="The retry must not double it.\r\n")
    to = ["journal@archive.test", first.address, second.address]
    if first.id > second.id:  # copies are made visible in mailbox id order
        first, second = second, first
        first_password, second_password = second_password, first_password
    writer_fault(monkeypatch, kind="fail", call=fails,
                 folder=str(mailboxes.folder / second.id / segments.SEGMENTS))
    running = serving()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(running.port(), to, raw)
    assert refused.value.smtp_code == 451
    wait_until(lambda: "injected I/O error" in (vault.path / "serve-status.json").read_text(),
               what="the writer's failure in the status")
    _send(running.port(), to, raw)
    wait_until(lambda: message_count(vault) == 1, what="the journal copy in the vault")
    for info, password in ((first, first_password), (second, second_password)):
        opened = mailboxes.unlock(info.id, password)
        assert [opened.read(m.id) for m in opened.messages()] == [raw]
