"""POP3 sources: backfill and UIDL-based incremental over POP3S and STLS; nothing deleted
unless asked, and then only what the vault has committed."""

from __future__ import annotations

from collections.abc import Callable

from mailvault.sources.definitions import SourceSpec
from mailvault.sources.imap import Credentials, Endpoint
from mailvault.sources.pop3 import Pop3Session
from mailvault.sources.reconcile import reconcile
from mailvault.vault import Vault
from tests.sources.cutting_proxy import CuttingProxy
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import Mailbox, sha256
from tests.sources.support import arrivals, message_hashes, run_sync


def _pop3_count(server: Dovecot, box: Mailbox) -> int:
    session = Pop3Session(Endpoint("127.0.0.1", server.pop3, "none"),
                          Credentials(box.address, box.password))
    try:
        return len(session.listing())
    finally:
        session.quit()


def test_pop3_backfill_then_incremental(vault: Vault, messages: list[bytes],
                                        mailbox: Callable[[], Mailbox],
                                        add_source: Callable[..., SourceSpec],
                                        dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[300:312]})
    spec = add_source(owner.address, owner.password, kind="pop3", tls="implicit",
                      port=dovecot_server.pop3s)

    first = run_sync(vault, spec)

    assert first.status == "ok", first.errors
    assert message_hashes(vault) == {sha256(m) for m in messages[300:312]}
    owner.fill({"INBOX": messages[312:315]})
    over_stls = add_source(owner.address, owner.password, kind="pop3", tls="starttls",
                           port=dovecot_server.pop3)
    other = run_sync(vault, over_stls).totals()
    assert (other["archived"], other["duplicates"]) == (3, 12)
    second = run_sync(vault, spec)
    assert second.totals()["duplicates"] == 3 and second.folders[
        (owner.address, "INBOX")].to_fetch == 3
    assert len(arrivals(vault, spec.name)) == 15
    assert _pop3_count(dovecot_server, owner) == 15  # nothing deleted
    balance = reconcile(vault, spec, "test").folders[0]
    assert (balance.at_source, balance.archived, balance.missing) == (15, 15, [])


def test_pop3_deletes_only_after_commit_and_never_a_failure(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    vault.settings.ingest.max_message_mb = 1
    owner = mailbox()
    big = messages[330] + b"x" * (1024 * 1024 + 10) + b"\r\n"
    owner.fill({"INBOX": [*messages[320:325], big]})
    spec = add_source(owner.address, owner.password, kind="pop3", tls="starttls",
                      port=dovecot_server.pop3, delete_after_archive=True)

    report = run_sync(vault, spec)

    assert report.totals()["archived"] == 5 and report.totals()["failed"] == 1
    assert report.totals()["deleted"] == 5
    assert _pop3_count(dovecot_server, owner) == 1  # the refused message stays at the server


def test_pop3_dropped_connection_resumes_in_the_same_run(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[340:380]})
    vault.settings.sync.backoff_s = 0.01
    size = sum(len(m) for m in messages[340:380])
    proxy = CuttingProxy(dovecot_server.pop3, cut_after=size // 2).start()
    try:
        spec = add_source(owner.address, owner.password, kind="pop3", tls="none",
                          port=proxy.port)
        report = run_sync(vault, spec)
    finally:
        proxy.stop()
    assert report.status == "ok" and len(report.retries) == 1
    assert "dropped" in report.retries[0][1]
    assert message_hashes(vault) == {sha256(m) for m in messages[340:380]}
    assert len(arrivals(vault, spec.name)) == 40
