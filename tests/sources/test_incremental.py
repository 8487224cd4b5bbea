"""Incremental sync: only what is new; a cut connection resumes with exact counts; a new
UIDVALIDITY rescans without storing anything twice; renamed and deleted folders."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import pytest

from mailvault.errors import SourceError
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.imap import Credentials, Endpoint, ImapSession
from mailvault.sources.reconcile import reconcile
from mailvault.vault import Vault
from tests.sources.cutting_proxy import CuttingProxy
from tests.sources.dovecot import Dovecot, free_ports
from tests.sources.mailboxes import Mailbox, sha256
from tests.sources.support import arrivals, message_count, message_hashes, per_folder, run_sync
from tests.support import MAILVAULT


def test_second_sync_fetches_only_new_mail(vault: Vault, messages: list[bytes],
                                           mailbox: Callable[[], Mailbox],
                                           add_source: Callable[..., SourceSpec]) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:10], "Lists/Kernel": messages[10:15]})
    spec = add_source(owner.address, owner.password)
    assert run_sync(vault, spec).totals()["archived"] == 15

    owner.fill({"INBOX": messages[15:18], "Lists/Kernel": messages[18:19]})
    second = run_sync(vault, spec)

    assert second.totals() == {"archived": 4, "duplicates": 0, "failed": 0, "spooled": 0,
                               "deleted": 0}
    assert second.folders[(owner.address, "INBOX")].to_fetch == 3
    assert per_folder(vault, spec.name) == {(owner.address, "INBOX"): 13,
                                            (owner.address, "Lists/Kernel"): 6}
    third = run_sync(vault, spec)
    assert third.totals()["archived"] == 0 and third.status == "ok"


def test_cut_connection_then_resume_exact_counts(vault: Vault, messages: list[bytes],
                                                 mailbox: Callable[[], Mailbox],
                                                 add_source: Callable[..., SourceSpec],
                                                 dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:120]})
    vault.settings.sync.fetch_batch = 10
    vault.settings.sync.retries = 0
    vault.settings.ingest.batch_size = 10
    size = sum(len(m) for m in messages[0:120])
    proxy = CuttingProxy(dovecot_server.imap, cut_after=size // 2).start()
    try:
        spec = add_source(owner.address, owner.password, port=proxy.port, tls="none")
        first = run_sync(vault, spec)
        assert first.status == "failed"
        assert "dropped" in first.errors[owner.address]
        partial = message_count(vault)
        assert 0 < partial < 120

        second = run_sync(vault, spec)
    finally:
        proxy.stop()
    assert second.status == "ok"
    assert message_hashes(vault) == {sha256(m) for m in messages[0:120]}
    found = arrivals(vault, spec.name)
    assert len(found) == 120 and len({a["uid"] for a in found}) == 120
    assert second.totals()["archived"] + partial == 120


def test_dropped_connection_is_retried_with_backoff(vault: Vault, messages: list[bytes],
                                                   mailbox: Callable[[], Mailbox],
                                                   add_source: Callable[..., SourceSpec],
                                                   dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:60]})
    vault.settings.sync.fetch_batch = 10
    vault.settings.sync.backoff_s = 0.05
    size = sum(len(m) for m in messages[0:60])
    proxy = CuttingProxy(dovecot_server.imap, cut_after=size // 3, cuts=2).start()
    try:
        spec = add_source(owner.address, owner.password, port=proxy.port, tls="none")
        report = run_sync(vault, spec)
    finally:
        proxy.stop()
    assert report.status == "ok", report.errors
    assert len(report.retries) == 2 and proxy.connections == 3
    assert len(arrivals(vault, spec.name)) == 60 and message_count(vault) == 60


def test_uidvalidity_change_rescans_without_storing_twice(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec]) -> None:
    owner = mailbox()
    owner.fill({"Projects": messages[0:8]})
    spec = add_source(owner.address, owner.password)
    first = run_sync(vault, spec)
    old_validity = first.folders[(owner.address, "Projects")].uidvalidity
    client = owner.client()
    client.delete_folder("Projects")
    client.logout()
    owner.fill({"Projects": messages[0:8] + messages[8:10]})

    second = run_sync(vault, spec)

    folder = second.folders[(owner.address, "Projects")]
    assert folder.uidvalidity != old_validity
    assert any("UIDVALIDITY changed" in n for n in folder.notes)
    assert (folder.archived, folder.duplicates) == (2, 8)
    assert message_hashes(vault) == {sha256(m) for m in messages[0:10]}
    assert run_sync(vault, spec).totals()["duplicates"] == 0


def test_renamed_and_deleted_folders_are_reported(vault: Vault, messages: list[bytes],
                                                  mailbox: Callable[[], Mailbox],
                                                  add_source: Callable[..., SourceSpec]
                                                  ) -> None:
    owner = mailbox()
    owner.fill({"Old name": messages[0:4], "Doomed": messages[4:6]})
    spec = add_source(owner.address, owner.password)
    run_sync(vault, spec)
    client = owner.client()
    client.rename_folder("Old name", "New/Name")
    client.delete_folder("Doomed")
    client.logout()

    report = run_sync(vault, spec)

    assert "renamed from Old name" in report.folders[(owner.address, "New/Name")].notes
    assert report.folders[(owner.address, "New/Name")].to_fetch == 0
    assert any("deleted at the source" in n
               for n in report.folders[(owner.address, "Doomed")].notes)
    assert report.totals()["archived"] == 0 and message_count(vault) == 6
    result = reconcile(vault, spec, "test")
    assert result.complete
    renamed = next(f for f in result.folders if f.folder == "New/Name")
    assert (renamed.at_source, renamed.archived) == (4, 4)
    assert sorted(f for _a, f, _w in result.departed) == ["Doomed", "Old name"]


def test_wrong_password_is_a_clear_recorded_failure(vault: Vault, mailbox: Callable[[], Mailbox],
                                                    add_source: Callable[..., SourceSpec]
                                                    ) -> None:
    owner = mailbox()
    spec = add_source(owner.address, "not-the-password")
    report = run_sync(vault, spec)
    assert report.status == "failed"
    assert "wrong user name or password" in report.errors[owner.address]
    assert "not-the-password" not in report.errors[owner.address]


def test_unreachable_host_is_retryable(vault: Vault, add_source: Callable[..., SourceSpec]
                                       ) -> None:
    vault.settings.sync.retries = 0
    spec = add_source("nobody@example.org", "pw", port=free_ports(1)[0], tls="none")
    report = run_sync(vault, spec)
    assert "unreachable" in report.errors["nobody@example.org"]
    with pytest.raises(SourceError) as caught:
        ImapSession(Endpoint("127.0.0.1", spec.port, "none"), Credentials("a", "b"))
    assert caught.value.retryable


@pytest.mark.slow
def test_killed_sync_resumes_without_loss_or_duplicates(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec]) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:250], "Older": messages[250:400]})
    spec = add_source(owner.address, owner.password)
    small = {"MAILVAULT_INGEST_BATCH_SIZE": "20", "MAILVAULT_SYNC_FETCH_BATCH": "20",
             "MAILVAULT_INGEST_WORKERS": "1"}
    process = subprocess.Popen([*MAILVAULT, "sync", spec.name, "--vault", str(vault.path)],
                               env={**os.environ, **small}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while message_count(vault) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()  # SIGKILL: no clean-up of any kind
    process.wait()
    partial = message_count(vault)
    assert 60 <= partial < 400

    report = run_sync(vault, spec)

    assert report.status == "ok", report.errors
    assert message_hashes(vault) == {sha256(m) for m in messages[0:400]}
    found = arrivals(vault, spec.name)
    assert len(found) == 400
    assert len({(a["folder"], a["uid"]) for a in found}) == 400
